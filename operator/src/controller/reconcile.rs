//! One reconcile of one Atsign, as a pipeline of named steps:
//!
//! validate → gather → certificate → build → apply → delete orphans → observe → register → status
//!
//! Each step has its own module; the builders are pure (snapshot-tested in
//! `tests/builders.rs`); a failing step returns the [`Error`] variant named after it, which is
//! the `step` label of the outcome metric. Deletion goes through [`super::cleanup`] instead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::absent::Optional;
use super::apply_children::apply_children;
use super::cleanup;
use super::conditions::{Observed, RegistrationState};
use super::context::{jitter, Context, Scoped, FINALIZER};
use super::error::{Cause, Error};
use super::gather::{gather, validate, Gathered};
use super::materials::{self, TlsState};
use super::observe::observe;
use super::orphans::{delete_orphans, Owner};
use super::register;
use super::status::{finish, report_failure};
use super::step::{Finished, Step};
use crate::build::{self, Children, Materials};
use crate::crd::Atsign;
use crate::tls::RenewalPoint;

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
            let result = reconcile_atsign(atsign, &scoped).await;
            let (step, reason) = outcome(&result);
            ctx.metrics.reconcile_outcome(step, reason);
            if let (Err(err), None) = (&result, &atsign.meta().deletion_timestamp) {
                if let Some(ns) = atsign.namespace() {
                    let api: Api<Atsign> = Api::namespaced(ctx.client.clone(), &ns);
                    report_failure(atsign, ctx, &api, err).await;
                }
            }
            result.map(|f| f.action)
        }
        Err(invalid) => {
            // The error boundary: one object that does not even parse is reported on, not retried
            // in a loop, and does not hold up the others.
            if let (Some(ns), Some(name)) = (&invalid.metadata.namespace, &invalid.metadata.name) {
                ctx.metrics.dequeued(ns, name);
            }
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

/// The finalizer first (cleanup once deleted), then the pipeline.
async fn reconcile_atsign(atsign: &Atsign, scoped: &Scoped) -> Result<Finished, Error> {
    let ctx = scoped.ctx.as_ref();
    let namespace = atsign
        .namespace()
        .ok_or_else(|| Error::Validate(Cause::Malformed("Atsign without a namespace".into())))?;
    let api: Api<Atsign> = Api::namespaced(ctx.client.clone(), &namespace);
    let ours = atsign.finalizers().iter().any(|f| f == FINALIZER);
    if atsign.meta().deletion_timestamp.is_some() {
        if !ours {
            return Ok(Finished::at(Step::Cleanup, Action::await_change()));
        }
        let action = cleanup::cleanup(atsign, ctx, &api)
            .await
            .map_err(Error::Cleanup)?;
        return Ok(Finished::at(Step::Cleanup, action));
    }
    if !ours {
        add_finalizer(atsign, &api).await.map_err(Error::Validate)?;
        // The finalizer patch triggers a fresh event; carry on from there.
        return Ok(Finished::at(Step::Validate, Action::await_change()));
    }
    // Until the caches hold their first listing every lookup would miss; a cache that cannot
    // fill (an API outage) is not waited for forever: misses fall back to reads and applies.
    let _ = tokio::time::timeout(CACHE_WAIT, scoped.caches.ready()).await;
    pipeline(atsign, scoped, &api).await
}

/// The outcome's labels: the step, and the error's reason, the reason the pipeline stopped, or
/// `Ok`.
fn outcome(result: &Result<Finished, Error>) -> (&'static str, &'static str) {
    match result {
        Ok(f) => (f.step.as_str(), f.stopped.unwrap_or("Ok")),
        Err(e) => (e.step().as_str(), e.reason()),
    }
}

/// How long a reconcile waits for the watch caches to fill after the controller starts.
const CACHE_WAIT: Duration = Duration::from_secs(10);

async fn pipeline(atsign: &Atsign, scoped: &Scoped, api: &Api<Atsign>) -> Result<Finished, Error> {
    let (ctx, caches) = (scoped.ctx.as_ref(), &scoped.caches);
    let now = Timestamp::now();
    let mut observed = starting(atsign, now);

    // Validate: the class, then the spec against it.
    let resolved = match validate(atsign, ctx, caches).await? {
        Ok(resolved) => resolved,
        Err(invalid) => {
            observed.invalid = Some((invalid.reason, invalid.message));
            finish(atsign, ctx, api, &observed)
                .await
                .map_err(Error::Status)?;
            return Ok(Finished::invalid(invalid.reason, invalid.then));
        }
    };
    observed.cert_source = if resolved.issuer.is_some() {
        "CertManager"
    } else {
        "BuiltIn"
    };

    // Gather: the children as they are, the CRAM secret, the CA, the published endpoint.
    let g = gather(atsign, ctx, caches, resolved).await?;
    observed.endpoint = g.endpoint.clone();

    // Certificate: kept, issued, or as cert-manager wrote it.
    let tls = materials::for_endpoint(
        g.ca.as_deref(),
        g.tls_secret.as_ref(),
        g.endpoint.as_ref(),
        g.resolved.cert_duration_hours,
        now,
        observed.renewal,
    )
    .map_err(|e| Error::Certificate(e.into()))?;
    observed.cert = tls.info.clone();

    // Build, once and purely.
    let desired = desired(atsign, &g, &tls);
    let unwanted = Optional::unwanted(&desired);
    let statefulset = desired.statefulset.clone();

    // Apply every child, each on its own.
    let applied = apply_children(ctx, atsign, &g, &tls, desired)
        .await
        .map_err(Error::Apply)?;
    observed.refused = applied.refused;

    // Delete the children the spec no longer wants.
    let route = g.route_version.api_resource();
    let uid = atsign.uid().unwrap_or_default();
    let owner = Owner {
        client: &ctx.client,
        ns: &g.resolved.namespace,
        name: &g.resolved.name,
        uid: &uid,
        route: &route,
    };
    delete_orphans(ctx, atsign, &owner, &unwanted)
        .await
        .map_err(Error::DeleteOrphans)?;

    // Observe the rollout.
    let parked = g.parked.is_some();
    let sts = applied.statefulset;
    let seen = observe(
        ctx,
        atsign,
        &g.resolved,
        sts.as_ref(),
        tls.info.as_ref(),
        parked,
        now,
    )
    .await
    .map_err(Error::Observe)?;
    observed.pod_ready = seen.ready;
    observed.rolling_out = seen.rolling_out;

    // Register in the directory.
    observed.registration =
        register::registration(atsign, ctx, &g.resolved, &observed, g.parked).await;
    if register::lost_the_atsign(&observed.registration) && observed.pod_ready {
        register::park(ctx, &g.resolved, statefulset, sts)
            .await
            .map_err(Error::Register)?;
        observed.pod_ready = false;
    }

    // Status.
    finish(atsign, ctx, api, &observed)
        .await
        .map_err(Error::Status)?;
    Ok(Finished::done(next_requeue(ctx, &observed, now)))
}

/// What is known before any step ran.
fn starting(atsign: &Atsign, now: Timestamp) -> Observed {
    let ns = atsign.namespace().unwrap_or_default();
    Observed {
        refused: None,
        generation: atsign.meta().generation,
        deleting: false,
        suspended: atsign.spec.suspend,
        invalid: None,
        endpoint: None,
        cert_source: "BuiltIn",
        cert: None,
        renewal: RenewalPoint::for_atsign(&ns, &atsign.name_any()),
        pod_ready: false,
        rolling_out: false,
        registration: RegistrationState::Waiting(
            "Provisioning",
            "the atServer is being provisioned".into(),
        ),
        now,
    }
}

/// The Build step: every child from what was gathered, by the pure builders. While another
/// owner holds the atSign the atServer is held at zero replicas.
fn desired(atsign: &Atsign, g: &Gathered, tls: &TlsState) -> Children {
    let mut children = build::build(
        atsign,
        &g.resolved,
        &Materials {
            cram_secret: g.cram.clone(),
            builtin_tls: tls.material.clone(),
            issuer_cas: tls.issuer_cas.clone(),
            host: g.endpoint.as_ref().map(|e| e.host.clone()),
            tls_route_version: g.route_version,
        },
    );
    if g.parked.is_some() {
        children.statefulset.spec.replicas = Some(0);
    }
    children
}

async fn add_finalizer(atsign: &Atsign, api: &Api<Atsign>) -> Result<(), Cause> {
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

    #[test]
    fn outcome_labels() {
        let settle = Action::await_change;
        assert_eq!(outcome(&Ok(Finished::done(settle()))), ("Done", "Ok"));
        assert_eq!(
            outcome(&Ok(Finished::invalid("ClassNotFound", settle()))),
            ("Validate", "ClassNotFound")
        );
        assert_eq!(
            outcome(&Ok(Finished::at(Step::Cleanup, settle()))),
            ("Cleanup", "Ok")
        );
        let failed = Err(Error::Observe(Cause::Malformed("x".into())));
        assert_eq!(outcome(&failed), ("Observe", "MalformedAtsign"));
    }
}
