//! A cert-manager `Certificate` for the published host, when an issuer is named.

use jiff::SignedDuration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::DynamicObject;
use kube::core::ApiResource;
use serde_json::json;

use super::names::{labels, tls_secret_name};
use super::object::{api_resource, dynamic, meta};
use crate::crd::{IssuerKind, IssuerRef};
use crate::resolve::Resolved;
use crate::tls::RenewalPoint;

pub fn certificate_api_resource() -> ApiResource {
    api_resource("cert-manager.io", "v1", "Certificate")
}

pub fn certificate(
    r: &Resolved,
    issuer: &IssuerRef,
    host: &str,
    owner: &OwnerReference,
) -> DynamicObject {
    let hours = r.cert_duration_hours.max(1);
    // Renewed at the Atsign's own point of the lifetime, as the built-in CA does, so a fleet
    // issued at once does not renew at once.
    let renew_before = RenewalPoint::for_atsign(&r.namespace, &r.name)
        .renew_before(SignedDuration::from_hours(hours))
        .as_mins();
    let names = if host.parse::<std::net::IpAddr>().is_ok() {
        json!({ "ipAddresses": [host] })
    } else {
        json!({ "dnsNames": [host] })
    };
    let mut spec = json!({
        "secretName": tls_secret_name(&r.name),
        "secretTemplate": { "labels": labels(r) },
        "duration": format!("{hours}h"),
        "renewBefore": format!("{renew_before}m"),
        "usages": ["server auth", "client auth", "digital signature", "key encipherment"],
        "privateKey": { "algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always" },
        "issuerRef": {
            "name": issuer.name,
            "kind": match issuer.kind.unwrap_or(IssuerKind::ClusterIssuer) {
                IssuerKind::Issuer => "Issuer",
                IssuerKind::ClusterIssuer => "ClusterIssuer",
            },
            "group": issuer.group.clone().unwrap_or_else(|| "cert-manager.io".into()),
        },
    });
    if let (Some(spec), Some(names)) = (spec.as_object_mut(), names.as_object()) {
        spec.extend(names.clone());
    }
    dynamic(
        &certificate_api_resource(),
        meta(r.name.clone(), r, Some(owner)),
        json!({ "spec": spec }),
    )
}
