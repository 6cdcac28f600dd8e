//! Every child of one Atsign, from the resolved spec and what the reconcile gathered: pure, and
//! snapshot-tested in `tests/builders.rs`.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use kube::api::DynamicObject;

use super::object::owner_reference;
use super::service::TlsRouteVersion;
use super::trust::trust_bundle;
use super::{certificate, secrets, service, statefulset, storage, trust};
use crate::crd::Atsign;
use crate::resolve::Resolved;
use crate::tls::TlsMaterial;

/// What the reconciler gathered that is not in the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Materials {
    /// The CRAM secret: the existing one, or a fresh one on first creation.
    pub cram_secret: String,
    /// The leaf certificate when the built-in CA issues it; `None` with cert-manager.
    pub builtin_tls: Option<TlsMaterial>,
    /// The CAs that issue the fleet's certificates, trusted before the fleet's bundle: the
    /// built-in CA (two while a new one is rotated in), or the `ca.crt` cert-manager wrote, when
    /// it wrote one (ACME issuers do not).
    pub issuer_cas: Vec<String>,
    /// The host the certificate must name (for a cert-manager `Certificate`), once known.
    pub host: Option<String>,
    /// The TLSRoute version the cluster serves.
    pub tls_route_version: TlsRouteVersion,
}

/// Every child of one Atsign.
#[derive(Debug, Clone, PartialEq)]
pub struct Children {
    pub cram_secret: Secret,
    pub tls_secret: Option<Secret>,
    /// With cert-manager: the trust bundle the pod mounts.
    pub trust_config_map: Option<ConfigMap>,
    pub certificate: Option<DynamicObject>,
    pub pvc: PersistentVolumeClaim,
    pub statefulset: StatefulSet,
    pub service: Service,
    pub tls_route: Option<DynamicObject>,
}

pub fn build(atsign: &Atsign, r: &Resolved, m: &Materials) -> Children {
    let owner = owner_reference(atsign);
    let trust = trust_bundle(&m.issuer_cas, &r.trust_bundle);
    Children {
        cram_secret: secrets::cram_secret(r, &m.cram_secret),
        tls_secret: m
            .builtin_tls
            .as_ref()
            .map(|t| secrets::tls_secret(r, t, &trust)),
        trust_config_map: r
            .issuer
            .is_some()
            .then(|| trust::config_map(r, &trust, &owner)),
        certificate: match (&r.issuer, &m.host) {
            (Some(issuer), Some(host)) => Some(certificate::certificate(r, issuer, host, &owner)),
            _ => None,
        },
        pvc: storage::pvc(r),
        statefulset: statefulset::statefulset(r, &trust, &owner),
        service: service::service(r, &owner),
        tls_route: service::tls_route(r, m.host.as_deref(), m.tls_route_version, &owner),
    }
}
