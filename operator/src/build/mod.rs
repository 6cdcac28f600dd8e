//! Pure builders: from a resolved spec and the materials the reconciler gathered (secrets,
//! certificates) to the exact children that should exist. No IO, no clock, no randomness,
//! so the output is snapshot-tested.

mod certificate;
mod secrets;
mod service;
mod statefulset;
mod storage;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::DynamicObject;
use kube::core::{ApiResource, GroupVersionKind};
use kube::Resource;
use sha2::{Digest, Sha256};

use crate::crd::Atsign;
use crate::resolve::Resolved;

pub use certificate::certificate_api_resource;
pub use service::tls_route_api_resource;

/// The name of the atProtocol port on the container and the Service.
pub const PORT_NAME: &str = "atprotocol";
pub const MANAGED_BY: &str = "atfleet-operator";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
/// Pod-template annotation whose change rolls the pod when mounted TLS material changes.
pub const TLS_CHECKSUM_ANNOTATION: &str = "atfleet.dev/tls-checksum";
/// Pod-template annotation whose change rolls the pod when the fleet's trust bundle changes
/// (the atServer reads its CA bundle only at start).
pub const TRUST_CHECKSUM_ANNOTATION: &str = "atfleet.dev/trust-checksum";
/// Key of the trust bundle in the built-in CA's TLS Secret.
pub const TRUST_BUNDLE_KEY: &str = "trust-bundle.crt";
/// Key of the CRAM secret inside its Secret.
pub const CRAM_KEY: &str = "cramSecret";

/// The label selector that matches every child the operator manages.
pub fn managed_selector() -> String {
    format!("{LABEL_MANAGED_BY}={MANAGED_BY}")
}

/// Names of an Atsign's children.
pub fn statefulset_name(name: &str) -> String {
    name.to_owned()
}
pub fn service_name(name: &str) -> String {
    name.to_owned()
}
pub fn pvc_name(name: &str) -> String {
    format!("{name}-data")
}
pub fn cram_secret_name(name: &str) -> String {
    format!("{name}-cram")
}
pub fn tls_secret_name(name: &str) -> String {
    format!("{name}-tls")
}

/// Certificate and key for the built-in CA path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsMaterial {
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
}

/// What the reconciler gathered that is not in the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Materials {
    /// The CRAM secret: the existing one, or a fresh one on first creation.
    pub cram_secret: String,
    /// The leaf certificate when the built-in CA issues it; `None` with cert-manager.
    pub builtin_tls: Option<TlsMaterial>,
    /// Digest of the certificate currently in the TLS Secret (whichever source wrote it).
    pub tls_checksum: Option<String>,
    /// The host the certificate must name (for a cert-manager `Certificate`), once known.
    pub host: Option<String>,
}

/// Every child of one Atsign.
#[derive(Debug, Clone, PartialEq)]
pub struct Children {
    pub cram_secret: Secret,
    pub tls_secret: Option<Secret>,
    pub certificate: Option<DynamicObject>,
    pub pvc: PersistentVolumeClaim,
    pub statefulset: StatefulSet,
    pub service: Service,
    pub tls_route: Option<DynamicObject>,
}

pub fn build(atsign: &Atsign, r: &Resolved, m: &Materials) -> Children {
    let owner = owner_reference(atsign);
    Children {
        cram_secret: secrets::cram_secret(r, &m.cram_secret),
        tls_secret: m.builtin_tls.as_ref().map(|t| secrets::tls_secret(r, t)),
        certificate: match (&r.issuer, &m.host) {
            (Some(issuer), Some(host)) => Some(certificate::certificate(r, issuer, host, &owner)),
            _ => None,
        },
        pvc: storage::pvc(r),
        statefulset: statefulset::statefulset(r, m.tls_checksum.as_deref(), &owner),
        service: service::service(r, &owner),
        tls_route: service::tls_route(r, m.host.as_deref(), &owner),
    }
}

/// SHA-256 of the certificate chain, used to roll the pod when the certificate changes.
pub fn tls_checksum(cert_pem: &[u8], ca_pem: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(cert_pem);
    h.update(b"\0");
    h.update(ca_pem);
    hex::encode(h.finalize())
}

/// Labels on every child; `instance` maps a child back to its Atsign.
pub fn labels(r: &Resolved) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_owned(), "atserver".to_owned()),
        (LABEL_INSTANCE.to_owned(), r.name.clone()),
        (LABEL_MANAGED_BY.to_owned(), MANAGED_BY.to_owned()),
    ])
}

/// The labels the StatefulSet selects its pod by (a stable subset of [`labels`]).
pub fn selector_labels(r: &Resolved) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_owned(), "atserver".to_owned()),
        (LABEL_INSTANCE.to_owned(), r.name.clone()),
    ])
}

fn owner_reference(atsign: &Atsign) -> OwnerReference {
    // An Atsign read from the API always has a uid; a missing one yields a reference the API
    // server rejects, surfacing the problem instead of building orphans.
    atsign
        .controller_owner_ref(&())
        .unwrap_or_else(|| OwnerReference {
            api_version: Atsign::api_version(&()).into_owned(),
            kind: Atsign::kind(&()).into_owned(),
            name: atsign.metadata.name.clone().unwrap_or_default(),
            uid: String::new(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        })
}

fn meta(name: String, r: &Resolved, owner: Option<&OwnerReference>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(r.namespace.clone()),
        labels: Some(labels(r)),
        owner_references: owner.map(|o| vec![o.clone()]),
        ..ObjectMeta::default()
    }
}

fn dynamic(ar: &ApiResource, metadata: ObjectMeta, data: serde_json::Value) -> DynamicObject {
    let mut obj = DynamicObject::new(metadata.name.as_deref().unwrap_or_default(), ar).data(data);
    obj.metadata = metadata;
    obj
}

fn api_resource(group: &str, version: &str, kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}
