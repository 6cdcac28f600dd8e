//! The DeleteOrphans step: an optional child the current spec no longer wants (the trust
//! ConfigMap and the Certificate after the issuer is dropped, the TLSRoute after the exposure
//! mode changes) is deleted, if it is this Atsign's (its controller owner reference carries the
//! Atsign's uid). Finalizer cleanup is not needed for these: the garbage collector removes owned
//! children with their Atsign. Which kinds an Atsign is known not to have is in [`super::absent`].

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, DynamicObject};
use kube::core::ApiResource;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::absent::{Absent, Optional};
use super::context::Context;
use super::error::OrphanError;
use super::status::publish;
use crate::build;
use crate::crd::Atsign;

/// What the step did to one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Known absent or not there.
    None,
    /// Deleted this Atsign's stale child (kind, name).
    Deleted(&'static str, String),
    /// A child of that name belongs to someone else: left alone.
    NotOurs(&'static str, String),
}

/// The Atsign whose children are looked at.
pub struct Owner<'a> {
    pub client: &'a kube::Client,
    pub ns: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    /// The TLSRoute version the cluster serves.
    pub route: &'a ApiResource,
}

/// Deletes `kind`'s child of `owner`, which the desired state does not want.
pub async fn delete_stale(
    owner: &Owner<'_>,
    absent: &Absent,
    kind: Optional,
) -> Result<Outcome, OrphanError> {
    let Owner {
        client,
        ns,
        name,
        uid,
        route,
    } = *owner;
    if absent.is_absent(ns, name, kind) {
        return Ok(Outcome::None);
    }
    let child = kind.child_name(name);
    let result = match kind {
        Optional::TrustConfigMap => {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
            delete_owned(&api, &child, uid).await
        }
        Optional::Certificate => {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), ns, &build::certificate_api_resource());
            delete_owned(&api, &child, uid).await
        }
        Optional::TlsRoute => {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, route);
            delete_owned(&api, &child, uid).await
        }
    };
    let outcome = result.map_err(|source| OrphanError {
        kind: kind.kind(),
        name: child.clone(),
        source,
    })?;
    absent.mark_absent(ns, name, kind);
    Ok(match outcome {
        Deletion::Deleted => Outcome::Deleted(kind.kind(), child),
        Deletion::NotOurs => Outcome::NotOurs(kind.kind(), child),
        Deletion::Gone => Outcome::None,
    })
}

/// The DeleteOrphans step: each kind in `unwanted` that `owner` still has is deleted, with an
/// Event saying so (or that a child of that name is someone else's and was left alone).
pub async fn delete_orphans(
    ctx: &Context,
    atsign: &Atsign,
    owner: &Owner<'_>,
    unwanted: &[Optional],
) -> Result<(), OrphanError> {
    let ns = owner.ns;
    for kind in unwanted {
        match delete_stale(owner, &ctx.absent, *kind).await? {
            Outcome::None => {}
            Outcome::Deleted(kind, child) => {
                let note =
                    format!("deleted the {kind} {ns}/{child}: the spec no longer asks for it");
                publish(ctx, atsign, false, "StaleChildDeleted", "Provision", note).await;
            }
            Outcome::NotOurs(kind, child) => {
                let note = format!(
                    "the {kind} {ns}/{child} is not this Atsign's (no owner reference to it): \
                     left as it is"
                );
                publish(ctx, atsign, true, "StaleChildNotOurs", "Provision", note).await;
            }
        }
    }
    Ok(())
}

enum Deletion {
    Deleted,
    NotOurs,
    Gone,
}

async fn delete_owned<K>(api: &Api<K>, name: &str, uid: &str) -> Result<Deletion, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let existing = match api.get_opt(name).await {
        Ok(e) => e,
        // The kind itself is not served (cert-manager or Gateway API not installed): nothing
        // of it can exist.
        Err(kube::Error::Api(s)) if s.code == 404 => None,
        Err(e) => return Err(e),
    };
    let Some(existing) = existing else {
        return Ok(Deletion::Gone);
    };
    let ours = existing
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.uid == uid);
    if !ours {
        return Ok(Deletion::NotOurs);
    }
    // Preconditioned on the uid read: a child recreated meanwhile is not deleted blindly.
    let params = DeleteParams {
        preconditions: existing.uid().map(|u| kube::api::Preconditions {
            uid: Some(u),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(Deletion::Deleted),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(Deletion::Gone),
        Err(e) => Err(e),
    }
}
