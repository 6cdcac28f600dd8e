//! The "delete orphans" step: an optional child the current spec no longer wants (the trust
//! ConfigMap and the Certificate after the issuer is dropped, the TLSRoute after the exposure
//! mode changes) is deleted, if it is this Atsign's (its controller owner reference carries the
//! Atsign's uid). Finalizer cleanup is not needed for these: the garbage collector removes owned
//! children with their Atsign.
//!
//! These kinds are not watched, so whether one exists is remembered per Atsign: the first
//! reconcile after a start reads it once, and a child is known absent from then on until the
//! operator applies it again. A settled fleet makes no requests here.

use std::collections::HashSet;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, DynamicObject};
use kube::core::ApiResource;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::build::{self, Children};

/// An optional child kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Optional {
    TrustConfigMap,
    Certificate,
    TlsRoute,
}

impl Optional {
    pub const ALL: [Optional; 3] = [
        Optional::TrustConfigMap,
        Optional::Certificate,
        Optional::TlsRoute,
    ];

    pub fn kind(self) -> &'static str {
        match self {
            Optional::TrustConfigMap => "ConfigMap",
            Optional::Certificate => "Certificate",
            Optional::TlsRoute => "TLSRoute",
        }
    }

    /// The child's name for the Atsign `name`.
    pub fn child_name(self, name: &str) -> String {
        match self {
            Optional::TrustConfigMap => build::trust_config_map_name(name),
            Optional::Certificate | Optional::TlsRoute => name.to_owned(),
        }
    }

    /// Whether `desired` has one.
    pub fn wanted(self, desired: &Children) -> bool {
        match self {
            Optional::TrustConfigMap => desired.trust_config_map.is_some(),
            Optional::Certificate => desired.certificate.is_some(),
            Optional::TlsRoute => desired.tls_route.is_some(),
        }
    }

    /// The kinds `desired` has none of.
    pub fn unwanted(desired: &Children) -> Vec<Optional> {
        Self::ALL
            .into_iter()
            .filter(|k| !k.wanted(desired))
            .collect()
    }
}

type Key = (String, String, Optional);

/// Optional children known not to exist.
#[derive(Default)]
pub struct Absent(Mutex<HashSet<Key>>);

impl Absent {
    fn key(ns: &str, name: &str, kind: Optional) -> Key {
        (ns.to_owned(), name.to_owned(), kind)
    }

    pub fn is_absent(&self, ns: &str, name: &str, kind: Optional) -> bool {
        let set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.contains(&Self::key(ns, name, kind))
    }

    pub fn mark_absent(&self, ns: &str, name: &str, kind: Optional) {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(Self::key(ns, name, kind));
    }

    /// The operator applied it: it exists now.
    pub fn mark_present(&self, ns: &str, name: &str, kind: Optional) {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&Self::key(ns, name, kind));
    }
}

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

/// The orphan step's failure: the kind whose read or delete failed.
#[derive(Debug, thiserror::Error)]
#[error("deleting the stale {kind} {name}: {source}")]
pub struct OrphanError {
    pub kind: &'static str,
    pub name: String,
    #[source]
    pub source: kube::Error,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absence_is_per_atsign_and_kind_and_cleared_by_an_apply() {
        let a = Absent::default();
        assert!(!a.is_absent("ns", "alice", Optional::Certificate));
        a.mark_absent("ns", "alice", Optional::Certificate);
        assert!(a.is_absent("ns", "alice", Optional::Certificate));
        assert!(!a.is_absent("ns", "alice", Optional::TlsRoute));
        assert!(!a.is_absent("other", "alice", Optional::Certificate));
        a.mark_present("ns", "alice", Optional::Certificate);
        assert!(!a.is_absent("ns", "alice", Optional::Certificate));
    }

    #[test]
    fn child_names() {
        assert_eq!(Optional::TrustConfigMap.child_name("alice"), "alice-trust");
        assert_eq!(Optional::Certificate.child_name("alice"), "alice");
        assert_eq!(Optional::TlsRoute.child_name("alice"), "alice");
    }
}
