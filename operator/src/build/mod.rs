//! Pure builders: from a resolved spec and the materials the reconciler gathered (secrets,
//! certificates) to the exact children that should exist. No IO, no clock, no randomness,
//! so the output is snapshot-tested.

mod certificate;
mod secrets;
mod service;
mod statefulset;
mod storage;
mod trust;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::DynamicObject;
use kube::core::{ApiResource, GroupVersionKind};
use kube::Resource;
use sha2::{Digest, Sha256};

use crate::crd::Atsign;
use crate::resolve::Resolved;

pub use certificate::certificate_api_resource;
pub use service::{tls_route_api_resource, TlsRouteVersion};
pub use trust::trust_bundle;

/// The name of the atProtocol port on the container and the Service.
pub const PORT_NAME: &str = "atprotocol";
pub const MANAGED_BY: &str = "atfleet-operator";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
/// Pod-template annotation whose change rolls the pod when its trust bundle changes: the
/// atServer reads `--ca-bundle` only at start. Its own certificate and key are not in the pod
/// template: the atServer reloads them when the mounted files change, so a renewal rolls nothing.
pub const TRUST_CHECKSUM_ANNOTATION: &str = "atfleet.dev/trust-checksum";
/// Key of the trust bundle in the built-in CA's TLS Secret and in the trust ConfigMap.
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
/// The trust bundle of an Atsign whose certificate cert-manager issues (the operator cannot add a
/// key to a Secret cert-manager writes).
pub fn trust_config_map_name(name: &str) -> String {
    format!("{name}-trust")
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

/// SHA-256 of a trust bundle, in the pod template so that a changed bundle rolls the pod.
pub fn trust_checksum(trust_pem: &str) -> String {
    hex::encode(Sha256::digest(trust_pem.as_bytes()))
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
