//! One reconcile of one Atsign: validate → gather materials → build → apply → observe →
//! register → status. Deletion goes through [`super::cleanup`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, ObjectReference, PersistentVolumeClaim, Pod, Secret, Service,
};
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::apply::{apply, hash_of, Applied};
use super::cache::{self, Caches};
use super::conditions::{Observed, RegistrationState};
use super::materials::{self, TlsState};
use super::orphans::{delete_stale, Optional, Outcome, Owner};
use super::register::{self, register};
use super::rollout;
use super::status::{finish, publish, report_failure};
use super::step::{Progress, Step};
use super::{cleanup, jitter, Context, Error, Scoped, FINALIZER};
use crate::build::{self, Materials};
use crate::crd::{AtServerClass, Atsign, ExposureMode, RolloutStrategy};
use crate::endpoint;
use crate::resolve::resolve;
use crate::tls::{CertInfo, ReissueReason, RenewalPoint};

pub async fn reconcile(
    obj: Arc<DeserializeGuard<Atsign>>,
    scoped: Arc<Scoped>,
) -> Result<Action, Error> {
    let ctx = &scoped.ctx;
    let started = Instant::now();
    ctx.metrics.reconciles_in_flight.inc();
    let result = match &obj.0 {
        Ok(atsign) => {
            let (ns, name) = (atsign.namespace().unwrap_or_default(), atsign.name_any());
            ctx.metrics.dequeued(&ns, &name);
            let mut progress = Progress::new();
            let result = reconcile_atsign(atsign, &scoped, &mut progress).await;
            let (step, reason) = progress.outcome(result.as_ref().err().map(Error::reason));
            ctx.metrics.reconcile_outcome(step, reason);
            if let (Err(err), None) = (&result, &atsign.meta().deletion_timestamp) {
                if let Some(ns) = atsign.namespace() {
                    let api: Api<Atsign> = Api::namespaced(ctx.client.clone(), &ns);
                    report_failure(atsign, ctx, &api, err).await;
                }
            }
            result
        }
        Err(invalid) => {
            // The error boundary: one object that does not even parse is reported on, not retried
            // in a loop, and does not hold up the others.
            let reference = ObjectReference {
                api_version: Some(Atsign::api_version(&()).into_owned()),
                kind: Some(Atsign::kind(&()).into_owned()),
                name: invalid.metadata.name.clone(),
                namespace: invalid.metadata.namespace.clone(),
                uid: invalid.metadata.uid.clone(),
                ..ObjectReference::default()
            };
            ctx.events
                .publish(
                    &reference,
                    true,
                    "MalformedAtsign",
                    "Validate",
                    invalid.error.clone(),
                )
                .await;
            ctx.metrics.reconcile_failed("MalformedAtsign");
            ctx.metrics
                .reconcile_outcome(Step::Validate.as_str(), "MalformedAtsign");
            Ok(Action::await_change())
        }
    };
    ctx.metrics.reconciles_in_flight.dec();
    ctx.metrics.observe_reconcile(started.elapsed());
    result
}

async fn reconcile_atsign(
    atsign: &Atsign,
    scoped: &Scoped,
    progress: &mut Progress,
) -> Result<Action, Error> {
    let ctx = scoped.ctx.as_ref();
    let namespace = atsign
        .namespace()
        .ok_or_else(|| Error::Malformed("Atsign without a namespace".into()))?;
    let api: Api<Atsign> = Api::namespaced(ctx.client.clone(), &namespace);
    if atsign.meta().deletion_timestamp.is_some() {
        if atsign.finalizers().iter().any(|f| f == FINALIZER) {
            progress.step = Step::Cleanup;
            return cleanup::cleanup(atsign, ctx, &api).await;
        }
        return Ok(Action::await_change());
    }
    if !atsign.finalizers().iter().any(|f| f == FINALIZER) {
        add_finalizer(atsign, &api).await?;
        // The finalizer patch triggers a fresh event; carry on from there.
        return Ok(Action::await_change());
    }
    // Until the caches hold their first listing every lookup would miss; a cache that cannot
    // fill (an API outage) is not waited for forever: misses fall back to reads and applies.
    let _ = tokio::time::timeout(CACHE_WAIT, scoped.caches.ready()).await;
    apply_atsign(atsign, ctx, &scoped.caches, &api, &namespace, progress).await
}

/// How long a reconcile waits for the watch caches to fill after the controller starts.
const CACHE_WAIT: Duration = Duration::from_secs(10);

async fn add_finalizer(atsign: &Atsign, api: &Api<Atsign>) -> Result<(), Error> {
    let patch = match &atsign.meta().finalizers {
        None => json!([
            { "op": "test", "path": "/metadata/finalizers", "value": null },
            { "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] },
        ]),
        Some(current) => json!([
            { "op": "test", "path": "/metadata/finalizers", "value": current },
            { "op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER },
        ]),
    };
    let patch: json_patch::Patch = serde_json::from_value(patch)?;
    api.patch(
        &atsign.name_any(),
        &PatchParams::default(),
        &Patch::Json::<()>(patch),
    )
    .await?;
    Ok(())
}

struct Children {
    statefulsets: Api<StatefulSet>,
    services: Api<Service>,
    secrets: Api<Secret>,
    pvcs: Api<PersistentVolumeClaim>,
}

impl Children {
    fn new(client: &kube::Client, ns: &str) -> Self {
        Self {
            statefulsets: Api::namespaced(client.clone(), ns),
            services: Api::namespaced(client.clone(), ns),
            secrets: Api::namespaced(client.clone(), ns),
            pvcs: Api::namespaced(client.clone(), ns),
        }
    }
}

/// A child from the cache; one the cache has not seen (yet) is read. For the Secrets a miss
/// would mean generating a CRAM secret or issuing a certificate afresh; for the Service, writing
/// it again when it was only created a moment ago.
async fn cached_or_read<K>(
    store: &Store<K>,
    api: &Api<K>,
    ns: &str,
    name: &str,
) -> Result<Option<K>, Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    match cache::lookup(store, ns, name) {
        Some(o) => Ok(Some(o)),
        None => Ok(api.get_opt(name).await?),
    }
}

/// The class from the cache, or read when the cache has not seen it (yet): a class created just
/// before its Atsign must not be reported missing.
async fn class(ctx: &Context, caches: &Caches, name: &str) -> Result<Option<AtServerClass>, Error> {
    match caches.classes.get(&ObjectRef::new(name)) {
        Some(c) => Ok(Some(AtServerClass::clone(&c))),
        None => Ok(Api::<AtServerClass>::all(ctx.client.clone())
            .get_opt(name)
            .await?),
    }
}

async fn apply_atsign(
    atsign: &Atsign,
    ctx: &Context,
    caches: &Caches,
    api: &Api<Atsign>,
    ns: &str,
    progress: &mut Progress,
) -> Result<Action, Error> {
    let now = Timestamp::now();
    let name = atsign.name_any();
    let mut observed = Observed {
        refused: None,
        generation: atsign.meta().generation,
        deleting: false,
        suspended: atsign.spec.suspend,
        invalid: None,
        endpoint: None,
        cert_source: "BuiltIn",
        cert: None,
        renewal: RenewalPoint::for_atsign(ns, &name),
        pod_ready: false,
        rolling_out: false,
        registration: RegistrationState::Waiting(
            "Provisioning",
            "the atServer is being provisioned".into(),
        ),
        now,
    };

    // Validate: the class, then the spec against it.
    let class = match &atsign.spec.class_name {
        Some(class_name) => match class(ctx, caches, class_name).await? {
            Some(c) => Some(c),
            None => {
                observed.invalid = Some((
                    "ClassNotFound",
                    format!("AtServerClass {class_name:?} does not exist"),
                ));
                progress.stopped = Some("ClassNotFound");
                finish(atsign, ctx, api, &observed).await?;
                return Ok(Action::requeue(jitter(ctx.config.resync)));
            }
        },
        None => None,
    };
    let resolved = match resolve(
        atsign,
        class.as_ref().map(|c| &c.spec),
        &ctx.config.defaults,
    ) {
        Ok(r) => r,
        Err(e) => {
            observed.invalid = Some((e.reason(), e.to_string()));
            progress.stopped = Some(e.reason());
            finish(atsign, ctx, api, &observed).await?;
            // Nothing changes until the spec does.
            return Ok(Action::await_change());
        }
    };
    observed.cert_source = if resolved.issuer.is_some() {
        "CertManager"
    } else {
        "BuiltIn"
    };
    let children = Children::new(&ctx.client, ns);
    progress.step = Step::Gather;

    // The Service first: its observed state (node port, balancer address) fixes the endpoint.
    let cram_existing = cached_or_read(
        &caches.secrets,
        &children.secrets,
        ns,
        &build::cram_secret_name(&name),
    )
    .await?;
    let tls_existing = cached_or_read(
        &caches.secrets,
        &children.secrets,
        ns,
        &build::tls_secret_name(&name),
    )
    .await?;
    let svc_existing = cached_or_read(
        &caches.services,
        &children.services,
        ns,
        &build::service_name(&name),
    )
    .await?;
    let (cram, cram_created) = materials::cram_secret(cram_existing.as_ref());
    let host_hint = endpoint::static_host(&resolved);
    let preliminary = build::build(
        atsign,
        &resolved,
        &Materials {
            cram_secret: cram.clone(),
            builtin_tls: None,
            issuer_cas: Vec::new(),
            host: host_hint.clone(),
            tls_route_version: Default::default(),
        },
    );
    progress.step = Step::ApplyService;
    let (service, _) = apply(&children.services, ctx, preliminary.service, svc_existing).await?;
    observed.endpoint = endpoint::published(&resolved, Some(&service));

    // TLS material for the published host.
    progress.step = Step::Certificate;
    let tls = match (&resolved.issuer, &observed.endpoint) {
        (None, Some(ep)) => {
            materials::builtin(
                ctx,
                tls_existing.as_ref(),
                &ep.host,
                resolved.cert_duration_hours,
                now,
                observed.renewal,
            )
            .await?
        }
        (None, None) => TlsState {
            material: None,
            present: false,
            issuer_cas: Vec::new(),
            info: None,
            reissued: None,
        },
        (Some(_), _) => materials::external(tls_existing.as_ref()),
    };
    observed.cert = tls.info.clone();
    // Gateway API's served TLSRoute version, only looked up when a route is or was in play.
    let route_version = if resolved.exposure.mode == ExposureMode::TLSRoute
        || !ctx.absent.is_absent(ns, &name, Optional::TlsRoute)
    {
        ctx.routes.get(&ctx.client).await
    } else {
        Default::default()
    };
    // Another owner holds the atSign: keep the atServer at zero until the record is free.
    let parked = register::still_in_conflict(atsign, ctx, &resolved).await;
    let mut desired = build::build(
        atsign,
        &resolved,
        &Materials {
            cram_secret: cram,
            builtin_tls: tls.material.clone(),
            issuer_cas: tls.issuer_cas.clone(),
            host: observed.endpoint.as_ref().map(|e| e.host.clone()),
            tls_route_version: route_version,
        },
    );

    if parked.is_some() {
        desired.statefulset.spec.replicas = Some(0);
    }
    let unwanted = Optional::unwanted(&desired);

    // Apply the rest.
    progress.step = Step::Apply;
    let sts_existing = cache::lookup(&caches.statefulsets, ns, &build::statefulset_name(&name));
    if cram_created {
        match cram_regenerated(&name, ns, sts_existing.as_ref(), resolved.rollout) {
            None => {
                publish(
                    ctx,
                    atsign,
                    false,
                    "CramSecretCreated",
                    "Provision",
                    "generated the CRAM secret".into(),
                )
                .await;
            }
            Some(regenerated) => {
                // The running atServer read the old secret at start and never reads it again:
                // restart it before the new Secret exists, so the new pod mounts the new value.
                // Should the Secret's apply fail, the next reconcile generates and restarts again.
                if regenerated.restart {
                    restart_pods(&children.statefulsets, &build::statefulset_name(&name)).await?;
                }
                publish(
                    ctx,
                    atsign,
                    true,
                    "CramSecretRegenerated",
                    "Provision",
                    regenerated.message,
                )
                .await;
            }
        }
    }
    apply(&children.secrets, ctx, desired.cram_secret, cram_existing).await?;
    let pvc_name = build::pvc_name(&name);
    let pvc_hash = hash_of(&desired.pvc)?;
    // A ready pod is using its claim: there is nothing to re-check until it is not.
    let serving = sts_existing.as_ref().is_some_and(|s| rollout::state(s).0);
    if !ctx.claims.fresh(ns, &pvc_name, &pvc_hash, serving) {
        let pvc_existing = children.pvcs.get_opt(&pvc_name).await?;
        if let Some(note) = inherited_volume_note(atsign, pvc_existing.as_ref()) {
            publish(ctx, atsign, false, "VolumeInherited", "Provision", note).await;
        }
        let (pvc, shrink) = keep_pvc_immutables(desired.pvc, pvc_existing.as_ref());
        let applied = apply(&children.pvcs, ctx, pvc, pvc_existing).await;
        let refusal = match applied {
            // Not remembered: the spec still asks for less than the claim holds.
            Ok(_) => shrink.map(|why| format!("PersistentVolumeClaim {ns}/{pvc_name}: {why}")),
            // A resize the apiserver refuses (a shrink, a class without allowVolumeExpansion,
            // a claim not yet bound) must not hold up the certificate and the StatefulSet.
            Err(Error::Kube(kube::Error::Api(status)))
                if status.code == 422 || status.code == 403 =>
            {
                Some(format!(
                    "the PersistentVolumeClaim {ns}/{pvc_name} was left as it is: {}",
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
                observed.refused = Some(("VolumeChangeRefused", note));
            }
            None => ctx.claims.remember(ns, &pvc_name, pvc_hash),
        }
    }
    if let Some(secret) = desired.tls_secret {
        apply(&children.secrets, ctx, secret, tls_existing.clone()).await?;
        if let (Some(reason), Some(info)) = (tls.reissued, &tls.info) {
            publish(
                ctx,
                atsign,
                false,
                "CertificateIssued",
                "Certificate",
                certificate_issued_note(reason, info),
            )
            .await;
        }
    }
    // Delete what the spec no longer wants (an issuer or exposure mode that changed), then
    // apply what it does.
    let owner = Owner {
        client: &ctx.client,
        ns,
        name: &name,
        uid: &atsign.uid().unwrap_or_default(),
        route: &route_version.api_resource(),
    };
    progress.step = Step::DeleteOrphans;
    for kind in unwanted {
        match delete_stale(&owner, &ctx.absent, kind).await? {
            Outcome::None => {}
            Outcome::Deleted(kind, child) => {
                publish(
                    ctx,
                    atsign,
                    false,
                    "StaleChildDeleted",
                    "Provision",
                    format!("deleted the {kind} {ns}/{child}: the spec no longer asks for it"),
                )
                .await;
            }
            Outcome::NotOurs(kind, child) => {
                publish(
                    ctx,
                    atsign,
                    true,
                    "StaleChildNotOurs",
                    "Provision",
                    format!(
                        "the {kind} {ns}/{child} is not this Atsign's (no owner reference to \
                         it): left as it is"
                    ),
                )
                .await;
            }
        }
    }
    progress.step = Step::Apply;
    if let Some(trust) = desired.trust_config_map.clone() {
        let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
        let existing = api.get_opt(&trust.name_any()).await?;
        apply(&api, ctx, trust, existing).await?;
        ctx.absent.mark_present(ns, &name, Optional::TrustConfigMap);
    }
    if let Some(cert) = desired.certificate.clone() {
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), ns, &build::certificate_api_resource());
        let existing = api.get_opt(&name).await?;
        apply(&api, ctx, cert, existing).await?;
        ctx.absent.mark_present(ns, &name, Optional::Certificate);
    }
    if let Some(route) = desired.tls_route.clone() {
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), ns, &route_version.api_resource());
        let existing = api.get_opt(&name).await?;
        apply(&api, ctx, route, existing).await?;
        ctx.absent.mark_present(ns, &name, Optional::TlsRoute);
    }
    // The pod only starts once there is a certificate to mount.
    let parked_statefulset = {
        let mut sts = desired.statefulset.clone();
        sts.spec.replicas = Some(0);
        sts
    };
    let sts = if tls.present {
        // Someone scaling the StatefulSet by hand would put two writers on one volume:
        // a replica count that is not ours forces the apply even if the hash matches.
        let sts_existing =
            sts_existing.filter(|e| e.spec.replicas == desired.statefulset.spec.replicas);
        let (sts, applied) = apply(
            &children.statefulsets,
            ctx,
            desired.statefulset,
            sts_existing,
        )
        .await?;
        if applied == Applied::Written {
            tracing::info!(atsign = %resolved.at_sign, "applied the StatefulSet");
        }
        Some(sts)
    } else {
        sts_existing
    };

    // Observe.
    progress.step = Step::Observe;
    let (ready, rolling) = sts.as_ref().map(rollout::state).unwrap_or((false, false));
    observed.pod_ready = ready && !resolved.suspend && parked.is_none();
    observed.rolling_out = rolling && !resolved.suspend;
    if let (Some(sts), true, RolloutStrategy::RollingUpdate) = (&sts, rolling, resolved.rollout) {
        recover_stuck_pod(ctx, atsign, ns, sts, now).await?;
    }
    if let Some(info) = &observed.cert {
        let days = info.not_after.duration_since(now).as_secs_f64() / 86_400.0;
        ctx.metrics.set_certificate_days_left(ns, &name, Some(days));
    }

    // Register.
    progress.step = Step::Register;
    observed.registration = match parked {
        Some(state) => state,
        None => register(atsign, ctx, &resolved, &observed).await,
    };
    let lost_the_atsign = matches!(
        &observed.registration,
        RegistrationState::Failed(reason, _) if *reason == register::OWNER_CONFLICT
    );
    if lost_the_atsign && observed.pod_ready {
        // Found out just now: a server nobody can reach is not left running.
        apply(&children.statefulsets, ctx, parked_statefulset, sts).await?;
        observed.pod_ready = false;
    }

    progress.step = Step::Status;
    finish(atsign, ctx, api, &observed).await?;
    progress.step = Step::Done;
    Ok(next_requeue(ctx, &observed, now))
}

/// Deletes the atServer's pod when it is stuck on an older, broken revision (see
/// [`rollout::stuck`]); the StatefulSet controller recreates it on the current one.
async fn recover_stuck_pod(
    ctx: &Context,
    atsign: &Atsign,
    ns: &str,
    sts: &StatefulSet,
    now: Timestamp,
) -> Result<(), Error> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let name = format!("{}-0", sts.name_any());
    let Some(pod) = pods.get_opt(&name).await? else {
        return Ok(());
    };
    if !rollout::stuck(sts, &pod, now) {
        return Ok(());
    }
    let params = DeleteParams {
        preconditions: pod.uid().map(|u| kube::api::Preconditions {
            uid: Some(u),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match pods.delete(&name, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    publish(
        ctx,
        atsign,
        true,
        "StuckPodReplaced",
        "Rollout",
        format!(
            "pod {ns}/{name} ran an older revision and was not Ready for {}s; deleted so the \
             StatefulSet recreates it on the current one",
            rollout::STUCK_AFTER.as_secs()
        ),
    )
    .await;
    Ok(())
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
async fn restart_pods(api: &Api<StatefulSet>, name: &str) -> Result<(), Error> {
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

/// Said when an Atsign finds a data volume older than itself (a Retain class kept it after an
/// earlier Atsign of that name was deleted): its atServer starts on that store and its keys.
fn inherited_volume_note(atsign: &Atsign, pvc: Option<&PersistentVolumeClaim>) -> Option<String> {
    let claimed = pvc?.metadata.creation_timestamp.as_ref()?;
    let born = atsign.metadata.creation_timestamp.as_ref()?;
    (claimed.0 < born.0).then(|| {
        format!(
            "the data volume {} was kept from an earlier Atsign of this name (created {}): this \
             atServer starts on that store, keys included, so onboard with the keys file that \
             belongs to it; delete the claim first to start empty",
            pvc.map(|p| p.name_any()).unwrap_or_default(),
            claimed.0
        )
    })
}

/// The `CertificateIssued` Event's note: the host, the expiry, and why in words.
fn certificate_issued_note(reason: ReissueReason, info: &CertInfo) -> String {
    let why = match reason {
        ReissueReason::Missing => "there was none yet",
        ReissueReason::Unreadable => "the stored one could not be read",
        ReissueReason::HostChanged => "the published host changed",
        ReissueReason::IssuerChanged => "the built-in CA changed",
        ReissueReason::DueForRenewal => "the previous one was due for renewal",
    };
    format!(
        "the built-in CA issued a certificate for {} valid until {} ({why})",
        info.names.join(", "),
        info.not_after
    )
}

/// A PVC's storage class cannot change and its size cannot shrink: keep what exists.
fn keep_pvc_immutables(
    mut desired: PersistentVolumeClaim,
    existing: Option<&PersistentVolumeClaim>,
) -> (PersistentVolumeClaim, Option<String>) {
    let Some(current) = existing.and_then(|p| p.spec.as_ref()) else {
        return (desired, None);
    };
    if let Some(spec) = desired.spec.as_mut() {
        spec.storage_class_name = current.storage_class_name.clone();
        let size = |s: &k8s_openapi::api::core::v1::PersistentVolumeClaimSpec| {
            s.resources
                .as_ref()?
                .requests
                .as_ref()?
                .get("storage")
                .cloned()
        };
        if let (Some(want), Some(have)) = (size(spec), size(current)) {
            if crate::quantity::bytes(&want) < crate::quantity::bytes(&have) {
                if let Some(req) = spec.resources.as_mut().and_then(|r| r.requests.as_mut()) {
                    req.insert("storage".into(), have.clone());
                }
                return (
                    desired,
                    Some(format!(
                        "the volume cannot shrink from {} to {}: it keeps {}",
                        have.0, want.0, have.0
                    )),
                );
            }
        }
    }
    (desired, None)
}

fn next_requeue(ctx: &Context, o: &Observed, now: Timestamp) -> Action {
    let settled = o.suspended
        || (o.pod_ready
            && o.cert_ready()
            && matches!(
                o.registration,
                RegistrationState::Registered { .. } | RegistrationState::Disabled
            ));
    if !settled {
        let wait = match o.registration {
            RegistrationState::Failed(..) => ctx.config.poll * 3,
            // The pod, the address and the certificate are all watched: their changes
            // reconcile at once, so polling for them would only repeat work. The resync
            // is the safety net.
            RegistrationState::Waiting(..) if o.endpoint.is_some() || o.pod_ready => {
                ctx.config.resync
            }
            _ => ctx.config.poll,
        };
        return Action::requeue(jitter(wait));
    }
    // Wake up in time to renew the certificate.
    let until_renewal = o
        .cert
        .as_ref()
        .map(|c| o.renewal.time(c).duration_since(now))
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or(ctx.config.resync);
    Action::requeue(jitter(
        ctx.config
            .resync
            .min(until_renewal + Duration::from_secs(1)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, VolumeResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn pvc(size: &str, class: Option<&str>) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            spec: Some(PersistentVolumeClaimSpec {
                storage_class_name: class.map(str::to_owned),
                resources: Some(VolumeResourceRequirements {
                    requests: Some([("storage".to_owned(), Quantity(size.into()))].into()),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            ..PersistentVolumeClaim::default()
        }
    }

    fn size(p: &PersistentVolumeClaim) -> Option<String> {
        let req = p.spec.as_ref()?.resources.as_ref()?.requests.as_ref()?;
        req.get("storage").map(|q| q.0.clone())
    }

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

    #[test]
    fn certificate_issued_says_why_in_words() {
        let now = Timestamp::from_second(1_800_000_000).expect("time");
        let info = CertInfo {
            not_before: now,
            not_after: now + jiff::SignedDuration::from_hours(24),
            names: vec!["alice.fleet.svc.cluster.local".into()],
        };
        assert_eq!(
            certificate_issued_note(ReissueReason::Missing, &info),
            "the built-in CA issued a certificate for alice.fleet.svc.cluster.local valid until \
             2027-01-16T08:00:00Z (there was none yet)"
        );
        let note = certificate_issued_note(ReissueReason::DueForRenewal, &info);
        assert!(
            note.ends_with("(the previous one was due for renewal)"),
            "{note}"
        );
        assert!(!note.contains("Missing") && !note.contains("DueForRenewal"));
    }

    #[test]
    fn claims_grow_but_never_shrink_or_change_class() {
        let existing = pvc("2Gi", Some("fast"));
        let (grown, refused) = keep_pvc_immutables(pvc("3Gi", Some("slow")), Some(&existing));
        assert_eq!(refused, None);
        assert_eq!(size(&grown).as_deref(), Some("3Gi"));
        assert_eq!(
            grown
                .spec
                .as_ref()
                .and_then(|s| s.storage_class_name.as_deref()),
            Some("fast")
        );
        let (shrunk, refused) = keep_pvc_immutables(pvc("1Gi", None), Some(&existing));
        assert_eq!(size(&shrunk).as_deref(), Some("2Gi"));
        assert_eq!(
            refused.as_deref(),
            Some("the volume cannot shrink from 2Gi to 1Gi: it keeps 2Gi")
        );
        let (fresh, refused) = keep_pvc_immutables(pvc("1Gi", None), None);
        assert_eq!(size(&fresh).as_deref(), Some("1Gi"));
        assert_eq!(refused, None);
    }
}
