//! Writing the Atsign's status (only when it changed) and its Events.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::conditions::{compute_status, Observed};
use super::context::Context;
use super::error::{Cause, Error};
use crate::crd::{Atsign, AtsignStatus, Phase};

fn reference(atsign: &Atsign) -> ObjectReference {
    atsign.object_ref(&())
}

pub(super) async fn publish(
    ctx: &Context,
    atsign: &Atsign,
    warning: bool,
    reason: &str,
    action: &str,
    note: String,
) {
    ctx.events
        .publish(&reference(atsign), warning, reason, action, note)
        .await;
}

/// Writes the status if it changed, and emits events for phase transitions.
pub(super) async fn finish(
    atsign: &Atsign,
    ctx: &Context,
    api: &Api<Atsign>,
    observed: &Observed,
) -> Result<(), Cause> {
    let previous = atsign.status.as_ref();
    let status = compute_status(previous, observed);
    let ns = atsign.namespace().unwrap_or_default();
    ctx.metrics.set_phase(&ns, &atsign.name_any(), status.phase);
    if previous == Some(&status) {
        return Ok(());
    }
    let old_phase = previous.and_then(|s| s.phase);
    if old_phase != status.phase {
        if let Some(phase) = status.phase {
            let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
            let note = ready.map(|c| c.message.clone()).unwrap_or_default();
            let warning = phase == crate::crd::Phase::Degraded;
            publish(ctx, atsign, warning, phase.as_str(), "Reconcile", note).await;
        }
    }
    write_status(api, &atsign.name_any(), &status).await
}

async fn write_status(api: &Api<Atsign>, name: &str, status: &AtsignStatus) -> Result<(), Cause> {
    // A merge patch leaves out what is absent: fields that went away must be nulled explicitly.
    let mut value = serde_json::to_value(status)?;
    if let Some(map) = value.as_object_mut() {
        for key in [
            "observedGeneration",
            "phase",
            "endpoint",
            "conditions",
            "certificate",
            "registration",
        ] {
            map.entry(key).or_insert(serde_json::Value::Null);
        }
    }
    let patch = json!({ "status": value });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Puts a failed reconcile where a user looks: `Degraded=True` with the error's reason and
/// message on the Atsign, and a Warning Event. Best effort: when even the status write is
/// refused, the Event and the operator's log still say it.
pub(super) async fn report_failure(atsign: &Atsign, ctx: &Context, api: &Api<Atsign>, err: &Error) {
    let reason = err.reason();
    let message = err.to_string();
    publish(ctx, atsign, true, reason, "Reconcile", message.clone()).await;
    let mut status = atsign.status.clone().unwrap_or_default();
    let unchanged = status.conditions.iter().any(|c| {
        c.type_ == "Degraded" && c.status == "True" && c.reason == reason && c.message == message
    });
    if unchanged {
        return;
    }
    status.conditions.retain(|c| c.type_ != "Degraded");
    status.conditions.push(Condition {
        type_: "Degraded".into(),
        status: "True".into(),
        reason: reason.into(),
        message,
        observed_generation: atsign.metadata.generation,
        last_transition_time: Time(Timestamp::now()),
    });
    status.phase = Some(Phase::Degraded);
    let ns = atsign.namespace().unwrap_or_default();
    ctx.metrics.set_phase(&ns, &atsign.name_any(), status.phase);
    if let Err(e) = write_status(api, &atsign.name_any(), &status).await {
        tracing::warn!(atsign = %atsign.name_any(), namespace = %ns, error = %e, "could not record the failure on the Atsign's status");
    }
}
