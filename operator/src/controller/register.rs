//! Directory registration: only once the pod is ready and the certificate valid, again when
//! the address changes, withdrawn while suspended.

use super::conditions::{Observed, RegistrationState};
use super::status::publish;
use super::Context;
use crate::crd::Atsign;
use crate::resolve::Resolved;

pub(super) async fn register(
    atsign: &Atsign,
    ctx: &Context,
    r: &Resolved,
    o: &Observed,
) -> RegistrationState {
    let Some(directory) = &ctx.directory else {
        return RegistrationState::Disabled;
    };
    let owner = ctx.owner_for(&r.namespace, &r.name);
    let previous = atsign.status.as_ref().and_then(|s| s.registration.as_ref());
    if r.suspend {
        if previous.is_some() {
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
        Err(e) => {
            publish(ctx, atsign, true, e.reason(), "Register", e.to_string()).await;
            RegistrationState::Failed(e.reason(), e.to_string())
        }
    }
}

pub(super) fn result_label<T>(r: &Result<T, crate::directory::DirectoryError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.reason(),
    }
}
