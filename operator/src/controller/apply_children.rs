//! The Apply step: every child the build produced, each on its own. A child the apiserver
//! refuses is recorded and the others still go ahead (a refused volume change must not hold up a
//! certificate renewal); the step fails afterwards, naming every refused child.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret};
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::absent::Optional;
use super::apply::{apply, hash_of, Applied};
use super::context::Context;
use super::error::{ApplyError, Cause, ChildFailure};
use super::gather::Gathered;
use super::materials::{certificate_issued_note, TlsState};
use super::rollout;
use super::status::publish;
use super::volume;
use crate::build::{self, Children};
use crate::crd::{Atsign, RolloutStrategy};

/// What the Apply step leaves for the later ones.
#[derive(Debug)]
pub struct AppliedChildren {
    /// The StatefulSet as it now is: applied, or as it was while the pod has no certificate
    /// to mount yet.
    pub statefulset: Option<StatefulSet>,
    /// A change the apiserver refused while the rest went ahead (reason, message): Degraded,
    /// but the atServer may still be serving.
    pub refused: Option<(&'static str, String)>,
}

/// The children that could not be written.
#[derive(Default)]
struct Failures(Vec<ChildFailure>);

impl Failures {
    /// The value, or `None` with the failure recorded against `kind` `ns/name`.
    fn note<T>(&mut self, kind: &'static str, name: String, result: Result<T, Cause>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(cause) => {
                self.0.push(ChildFailure { kind, name, cause });
                None
            }
        }
    }
}

/// The Apply step.
pub async fn apply_children(
    ctx: &Context,
    atsign: &Atsign,
    g: &Gathered,
    tls: &TlsState,
    desired: Children,
) -> Result<AppliedChildren, ApplyError> {
    let (ns, name) = (g.resolved.namespace.as_str(), g.resolved.name.as_str());
    let at = |child: &str| format!("{ns}/{child}");
    let mut failed = Failures::default();

    let cram_name = at(&build::cram_secret_name(name));
    let cram = cram_secret(ctx, atsign, g, desired.cram_secret).await;
    // The StatefulSet's template names what the pod mounts (the trust bundle's checksum): it is
    // applied only once the Secrets and the ConfigMap it mounts hold exactly that, or a pod could
    // start on the old contents under the new checksum, which the CA rotation reads as "started
    // on the new bundle".
    let mut mounts_written = failed.note("Secret", cram_name, cram).is_some();

    let service = apply(
        &Api::namespaced(ctx.client.clone(), ns),
        ctx,
        desired.service,
        g.service.clone(),
    )
    .await;
    failed.note("Service", at(&build::service_name(name)), service);

    let serving = g.statefulset.as_ref().is_some_and(|s| rollout::state(s).0);
    let claim = claim(ctx, atsign, ns, desired.pvc, serving).await;
    let refused = failed
        .note("PersistentVolumeClaim", at(&build::pvc_name(name)), claim)
        .flatten();

    // The pod mounts the TLS Secret: it starts only once there is one.
    if let Some(secret) = desired.tls_secret {
        let written = apply(
            &Api::<Secret>::namespaced(ctx.client.clone(), ns),
            ctx,
            secret,
            g.tls_secret.clone(),
        )
        .await;
        let written = failed.note("Secret", at(&build::tls_secret_name(name)), written);
        mounts_written &= written.is_some();
        if let (Some(_), Some(reason), Some(info)) = (written, tls.reissued, &tls.info) {
            let note = certificate_issued_note(reason, info);
            publish(ctx, atsign, false, "CertificateIssued", "Certificate", note).await;
        }
    }

    if let Some(trust) = desired.trust_config_map {
        let child = at(&trust.name_any());
        let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
        let result = optional(ctx, &api, trust, g, Optional::TrustConfigMap).await;
        mounts_written &= failed.note("ConfigMap", child, result).is_some();
    }
    if let Some(cert) = desired.certificate {
        let api = dynamic(ctx, ns, &build::certificate_api_resource());
        let result = optional(ctx, &api, cert, g, Optional::Certificate).await;
        failed.note("Certificate", at(name), result);
    }
    if let Some(route) = desired.tls_route {
        let api = dynamic(ctx, ns, &g.route_version.api_resource());
        let result = optional(ctx, &api, route, g, Optional::TlsRoute).await;
        failed.note("TLSRoute", at(name), result);
    }

    let statefulset = if tls.present && mounts_written {
        let applied = statefulset(ctx, g, desired.statefulset).await;
        failed
            .note("StatefulSet", at(&build::statefulset_name(name)), applied)
            .or_else(|| g.statefulset.clone())
    } else {
        g.statefulset.clone()
    };

    if failed.0.is_empty() {
        Ok(AppliedChildren {
            statefulset,
            refused,
        })
    } else {
        Err(ApplyError(failed.0))
    }
}

fn dynamic(ctx: &Context, ns: &str, resource: &ApiResource) -> Api<DynamicObject> {
    Api::namespaced_with(ctx.client.clone(), ns, resource)
}

/// The CRAM Secret. One generated while the StatefulSet exists replaces one that was deleted:
/// the running atServer read the old value at start and never reads it again, so it is
/// restarted before the new Secret exists and its new pod mounts the new value. Should the
/// Secret's apply fail, the next reconcile generates and restarts again.
async fn cram_secret(
    ctx: &Context,
    atsign: &Atsign,
    g: &Gathered,
    secret: Secret,
) -> Result<(), Cause> {
    let (ns, name) = (g.resolved.namespace.as_str(), g.resolved.name.as_str());
    if g.cram_created {
        match cram_regenerated(name, ns, g.statefulset.as_ref(), g.resolved.rollout) {
            None => {
                let note = "generated the CRAM secret".into();
                publish(ctx, atsign, false, "CramSecretCreated", "Provision", note).await;
            }
            Some(regenerated) => {
                if regenerated.restart {
                    let api = Api::namespaced(ctx.client.clone(), ns);
                    restart_pods(&api, &build::statefulset_name(name)).await?;
                }
                let note = regenerated.message;
                publish(
                    ctx,
                    atsign,
                    true,
                    "CramSecretRegenerated",
                    "Provision",
                    note,
                )
                .await;
            }
        }
    }
    let api = Api::namespaced(ctx.client.clone(), ns);
    apply(&api, ctx, secret, g.cram_secret.clone()).await?;
    Ok(())
}

/// The data volume's claim. It is not watched: while its pod is ready (`serving`) and the
/// configuration unchanged it is not read again. A change the apiserver refuses (a shrink, a
/// class without `allowVolumeExpansion`, a claim not yet bound) is returned as the refusal,
/// not as an error.
async fn claim(
    ctx: &Context,
    atsign: &Atsign,
    ns: &str,
    desired: PersistentVolumeClaim,
    serving: bool,
) -> Result<Option<(&'static str, String)>, Cause> {
    let name = desired.name_any();
    let hash = hash_of(&desired)?;
    if ctx.claims.fresh(ns, &name, &hash, serving) {
        return Ok(None);
    }
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
    let existing = api.get_opt(&name).await?;
    if let Some(note) = volume::inherited_note(atsign, existing.as_ref()) {
        publish(ctx, atsign, false, "VolumeInherited", "Provision", note).await;
    }
    let (pvc, shrink) = volume::keep_immutables(desired, existing.as_ref());
    let refusal = match apply(&api, ctx, pvc, existing).await {
        // Not remembered: the spec still asks for less than the claim holds.
        Ok(_) => shrink.map(|why| format!("PersistentVolumeClaim {ns}/{name}: {why}")),
        Err(Cause::Kube(kube::Error::Api(status))) if status.code == 422 || status.code == 403 => {
            Some(format!(
                "the PersistentVolumeClaim {ns}/{name} was left as it is: {}",
                status.message
            ))
        }
        Err(e) => return Err(e),
    };
    match refusal {
        Some(note) => {
            publish(
                ctx,
                atsign,
                true,
                "VolumeChangeRefused",
                "Provision",
                note.clone(),
            )
            .await;
            Ok(Some(("VolumeChangeRefused", note)))
        }
        None => {
            ctx.claims.remember(ns, &name, hash);
            Ok(None)
        }
    }
}

/// A child the spec may or may not want (see [`super::orphans`]): not watched, so read before
/// it is applied, and remembered as present.
async fn optional<K>(
    ctx: &Context,
    api: &Api<K>,
    desired: K,
    g: &Gathered,
    kind: Optional,
) -> Result<(), Cause>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    let existing = api.get_opt(&desired.name_any()).await?;
    apply(api, ctx, desired, existing).await?;
    let (ns, name) = (&g.resolved.namespace, &g.resolved.name);
    ctx.absent.mark_present(ns, name, kind);
    Ok(())
}

/// The StatefulSet. Someone scaling it by hand would put two writers on one volume: a replica
/// count that is not ours forces the apply even if the hash matches.
async fn statefulset(
    ctx: &Context,
    g: &Gathered,
    desired: StatefulSet,
) -> Result<StatefulSet, Cause> {
    let existing = g
        .statefulset
        .clone()
        .filter(|e| e.spec.replicas == desired.spec.replicas);
    let api = Api::namespaced(ctx.client.clone(), &g.resolved.namespace);
    let (sts, applied) = apply(&api, ctx, desired, existing).await?;
    if applied == Applied::Written {
        tracing::info!(atsign = %g.resolved.at_sign, "applied the StatefulSet");
    }
    Ok(sts)
}

/// What to do about a CRAM secret generated for an Atsign whose atServer already exists.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CramRegenerated {
    /// Restart the pod (the StatefulSet rolls it); false under `OnDelete`, where the user does.
    restart: bool,
    /// The Event's note.
    message: String,
}

/// A CRAM secret made while the StatefulSet exists replaces one that was deleted: the running
/// atServer still holds the old value (it reads `--cram-secret-file` once, at start). `None` for a
/// new Atsign, whose first pod starts with the new secret.
fn cram_regenerated(
    name: &str,
    ns: &str,
    statefulset: Option<&StatefulSet>,
    rollout: RolloutStrategy,
) -> Option<CramRegenerated> {
    statefulset?;
    let secret = build::cram_secret_name(name);
    let pod = format!("{}-0", build::statefulset_name(name));
    let (restart, what) = match rollout {
        RolloutStrategy::RollingUpdate => (
            true,
            "restarting the atServer so it reads the new one".to_owned(),
        ),
        RolloutStrategy::OnDelete => (
            false,
            format!(
                "the rollout strategy is OnDelete: delete pod {ns}/{pod} so the atServer reads \
                 the new one"
            ),
        ),
    };
    Some(CramRegenerated {
        restart,
        message: format!(
            "the CRAM secret {ns}/{secret} was missing and a new one was generated; {what}. \
             An atSign already onboarded keeps CRAM disabled and is not affected"
        ),
    })
}

/// Rolls the StatefulSet's pod, as `kubectl rollout restart` does: a pod-template annotation under
/// its own field manager, so the operator's own applies neither remove nor fight it.
async fn restart_pods(api: &Api<StatefulSet>, name: &str) -> Result<(), Cause> {
    let patch = json!({
        "spec": { "template": { "metadata": { "annotations": {
            RESTARTED_AT_ANNOTATION: Timestamp::now().to_string()
        } } } }
    });
    let params = PatchParams {
        field_manager: Some("atfleet-operator-restart".into()),
        ..PatchParams::default()
    };
    match api.patch(name, &params, &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        // Gone meanwhile: the next pod starts with the new secret anyway.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Pod-template annotation that restarts an atServer when its CRAM secret was replaced.
const RESTARTED_AT_ANNOTATION: &str = "atfleet.dev/restartedAt";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regenerated_cram_secret_restarts_a_running_atserver() {
        assert_eq!(
            cram_regenerated("alice", "fleet", None, RolloutStrategy::RollingUpdate),
            None,
            "a new Atsign's first pod reads the new secret"
        );
        let sts = StatefulSet::default();
        let r = cram_regenerated("alice", "fleet", Some(&sts), RolloutStrategy::RollingUpdate);
        assert_eq!(
            r,
            Some(CramRegenerated {
                restart: true,
                message: "the CRAM secret fleet/alice-cram was missing and a new one was \
                          generated; restarting the atServer so it reads the new one. An atSign \
                          already onboarded keeps CRAM disabled and is not affected"
                    .into(),
            })
        );
        let r = cram_regenerated("alice", "fleet", Some(&sts), RolloutStrategy::OnDelete)
            .expect("regenerated");
        assert!(!r.restart);
        assert!(
            r.message.contains("delete pod fleet/alice-0"),
            "{}",
            r.message
        );
    }
}
