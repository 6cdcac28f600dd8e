//! The names, labels and annotations every child carries, and the children's names.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::resolve::Resolved;

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
