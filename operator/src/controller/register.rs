//! Directory registration: only once the pod is ready and the certificate valid, again when
//! the address changes, withdrawn while suspended.

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::Api;

use super::apply::apply;
use super::conditions::{Observed, RegistrationState};
use super::context::Context;
use super::error::Cause;
use super::status::publish;
use crate::crd::Atsign;
use crate::directory::DirectoryError;
use crate::resolve::Resolved;

/// The Register step: the directory record, or the state it was parked in (`parked`, from
/// [`still_in_conflict`]) while another owner holds the atSign.
pub(super) async fn registration(
    atsign: &Atsign,
    ctx: &Context,
    r: &Resolved,
    o: &Observed,
    parked: Option<RegistrationState>,
) -> RegistrationState {
    match parked {
        Some(state) => state,
        None => register(atsign, ctx, r, o).await,
    }
}

/// The registration was refused because another owner holds the atSign.
pub(super) fn lost_the_atsign(state: &RegistrationState) -> bool {
    matches!(state, RegistrationState::Failed(reason, _) if *reason == OWNER_CONFLICT)
}

/// Scales the atServer to zero (`desired` with no replicas): found out just now that another
/// owner holds its atSign, and a server nobody can reach is not left running.
pub(super) async fn park(
    ctx: &Context,
    r: &Resolved,
    mut desired: StatefulSet,
    current: Option<StatefulSet>,
) -> Result<(), Cause> {
    desired.spec.replicas = Some(0);
    let api = Api::namespaced(ctx.client.clone(), &r.namespace);
    apply(&api, ctx, desired, current).await?;
    Ok(())
}

async fn register(atsign: &Atsign, ctx: &Context, r: &Resolved, o: &Observed) -> RegistrationState {
    let Some(directory) = &ctx.directory else {
        return RegistrationState::Disabled;
    };
    let owner = ctx.owner_for(&r.namespace, &r.name);
    let previous = atsign.status.as_ref().and_then(|s| s.registration.as_ref());
    if r.suspend {
        // The recorded registration is cleared while the pod is not ready (a rollout), but the
        // directory still publishes the address: withdraw unless a suspend already did.
        let withdrawn = atsign.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Registered" && c.reason == "Suspended")
        });
        if previous.is_some() || !withdrawn {
            let result = directory.deregister(&r.at_sign, &owner, false).await;
            ctx.metrics
                .directory_call("deregister", result_label(&result));
            if let Err(e) = result {
                return RegistrationState::Failed(e.reason(), e.to_string());
            }
            publish(
                ctx,
                atsign,
                false,
                "Deregistered",
                "Suspend",
                "withdrawn from the directory while suspended".into(),
            )
            .await;
        }
        return RegistrationState::Suspended;
    }
    let Some(endpoint) = &o.endpoint else {
        return RegistrationState::Waiting(
            "WaitingForAddress",
            "the published address is not known yet".into(),
        );
    };
    if !o.pod_ready {
        return RegistrationState::Waiting(
            "PodNotReady",
            "registration waits for the atServer to be ready".into(),
        );
    }
    if !o.cert_ready() {
        return RegistrationState::Waiting(
            "CertificateNotReady",
            "registration waits for a valid certificate".into(),
        );
    }
    let target = endpoint.to_string();
    if previous.is_some_and(|p| p.endpoint == target && p.owner == owner) {
        // Believed registered: check the directory still says so (it may have been restored
        // from a backup). A failed check keeps the belief; the next resync checks again.
        let current = directory.get(&r.at_sign).await;
        ctx.metrics.directory_call("get", result_label(&current));
        match current {
            Ok(Some(reg))
                if reg.host == endpoint.host && reg.port == endpoint.port && reg.owner == owner =>
            {
                return RegistrationState::Registered {
                    endpoint: target,
                    owner,
                };
            }
            Ok(_) => {
                tracing::warn!(atsign = %r.at_sign, "directory record drifted; registering again")
            }
            Err(e) => {
                tracing::warn!(atsign = %r.at_sign, error = %e, "could not verify the registration");
                return RegistrationState::Registered {
                    endpoint: target,
                    owner,
                };
            }
        }
    }
    let result = directory
        .register(&r.at_sign, &endpoint.host, endpoint.port, &owner, false)
        .await;
    ctx.metrics
        .directory_call("register", result_label(&result));
    match result {
        Ok(reg) => {
            publish(
                ctx,
                atsign,
                false,
                "Registered",
                "Register",
                format!("{} → {}:{}", reg.atsign, reg.host, reg.port),
            )
            .await;
            RegistrationState::Registered {
                endpoint: target,
                owner,
            }
        }
        Err(DirectoryError::Conflict { current_owner, .. }) => {
            let state = conflict(r, current_owner.as_deref(), &ctx.config.owner_id);
            if let RegistrationState::Failed(reason, message) = &state {
                publish(ctx, atsign, true, reason, "Register", message.clone()).await;
            }
            state
        }
        Err(e) => {
            publish(ctx, atsign, true, e.reason(), "Register", e.to_string()).await;
            RegistrationState::Failed(e.reason(), e.to_string())
        }
    }
}

/// The reason an Atsign whose atSign another owner holds in the directory is parked under.
pub(super) const OWNER_CONFLICT: &str = "OwnerConflict";

/// An Atsign that lost its atSign to another owner: its atServer could never be reached, so it
/// stays scaled to zero until the record is free again. Called on each reconcile while the
/// status says so: `Some` while the conflict lasts (or cannot be checked), `None` once the record
/// is free or ours.
pub(super) async fn still_in_conflict(
    atsign: &Atsign,
    ctx: &Context,
    r: &Resolved,
) -> Option<RegistrationState> {
    let parked = atsign
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Registered")
        .filter(|c| c.status == "False" && c.reason == OWNER_CONFLICT)?;
    let directory = ctx.directory.as_ref()?;
    let owner = ctx.owner_for(&r.namespace, &r.name);
    let current = directory.get(&r.at_sign).await;
    ctx.metrics.directory_call("get", result_label(&current));
    match current {
        Ok(Some(reg)) if reg.owner != owner => {
            Some(conflict(r, Some(&reg.owner), &ctx.config.owner_id))
        }
        Ok(_) => None,
        // Cannot tell: stay parked with what was known.
        Err(_) => Some(RegistrationState::Failed(
            OWNER_CONFLICT,
            parked.message.clone(),
        )),
    }
}

fn conflict(r: &Resolved, current_owner: Option<&str>, owner_id: &str) -> RegistrationState {
    RegistrationState::Failed(
        OWNER_CONFLICT,
        conflict_message(&r.at_sign, current_owner, owner_id),
    )
}

/// Who holds a directory record, in words: an Atsign of this operator installation (owner ids
/// are `<owner id>/<namespace>/<name>`), or some other owner.
pub(super) fn describe_owner(current_owner: Option<&str>, owner_id: &str) -> String {
    let Some(owner) = current_owner.filter(|o| !o.is_empty()) else {
        return "another owner".into();
    };
    let ours = owner
        .strip_prefix(owner_id)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|rest| rest.split_once('/'))
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains('/'));
    match ours {
        Some((ns, name)) => format!("Atsign {ns}/{name}"),
        None => format!("owner {owner:?}, which is not an Atsign of this operator"),
    }
}

/// The Degraded/Ready message of an Atsign whose atSign is registered to someone else: who holds
/// it, what the operator did, and what the user can do with the spec and kubectl alone.
pub(super) fn conflict_message(
    at_sign: &str,
    current_owner: Option<&str>,
    owner_id: &str,
) -> String {
    let holder = describe_owner(current_owner, owner_id);
    let remedy = if holder.starts_with("Atsign ") {
        format!("delete this Atsign, or delete {holder} and this one takes over its record")
    } else {
        "delete this Atsign, or have that owner's record removed from the directory and this one \
         registers by itself"
            .to_owned()
    };
    format!(
        "{at_sign} is registered in the directory to {holder}, so this atServer could never be \
         reached: it is scaled to zero. To resolve: {remedy}"
    )
}

/// The `result` label of `atfleet_operator_directory_calls_total`: `Ok` or the error's reason,
/// all in the same PascalCase as the condition reasons.
pub(super) fn result_label<T>(r: &Result<T, DirectoryError>) -> &'static str {
    match r {
        Ok(_) => "Ok",
        Err(e) => e.reason(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_names_the_owning_atsign_and_a_remedy_the_spec_can_express() {
        let m = conflict_message("@bob", Some("atfleet/fleet/bob"), "atfleet");
        assert_eq!(
            m,
            "@bob is registered in the directory to Atsign fleet/bob, so this atServer could never \
             be reached: it is scaled to zero. To resolve: delete this Atsign, or delete Atsign \
             fleet/bob and this one takes over its record"
        );
        assert!(!m.contains("Some("), "no Rust debug output: {m}");
        assert!(
            !m.contains("force"),
            "no advice the spec cannot express: {m}"
        );
    }

    #[test]
    fn conflict_with_a_foreign_owner() {
        let m = conflict_message("@bob", Some("other-install/x"), "atfleet");
        assert!(
            m.contains("to owner \"other-install/x\", which is not an Atsign of this operator"),
            "{m}"
        );
        assert!(m.contains("scaled to zero"), "{m}");
        assert_eq!(describe_owner(None, "atfleet"), "another owner");
        assert_eq!(
            describe_owner(Some("atfleet/a/b/c"), "atfleet"),
            "owner \"atfleet/a/b/c\", which is not an Atsign of this operator"
        );
        assert_eq!(
            describe_owner(Some("atfleetx/ns/n"), "atfleet"),
            "owner \"atfleetx/ns/n\", which is not an Atsign of this operator"
        );
    }

    #[test]
    fn result_labels_share_one_case() {
        let ok: Result<(), DirectoryError> = Ok(());
        assert_eq!(result_label(&ok), "Ok");
        let err: Result<(), DirectoryError> = Err(DirectoryError::Unauthorized);
        assert_eq!(result_label(&err), "DirectoryUnauthorized");
        for l in [result_label(&ok), result_label(&err)] {
            assert!(l.starts_with(|c: char| c.is_ascii_uppercase()), "{l}");
        }
    }
}
