//! Spec fragments shared by `Atsign` and `AtServerClass`. Every field is optional so an `Atsign`
//! overrides its class field by field.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What happens to the volume and Secrets when the `Atsign` is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum RetentionPolicy {
    /// Keep the PersistentVolumeClaim and Secrets (the default): recreating the Atsign picks them up.
    #[default]
    Retain,
    /// Delete them with the Atsign.
    Delete,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Volume size; growing it resizes the claim online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionPolicy>,
}

/// A cert-manager issuer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuerRef {
    pub name: String,
    /// `Issuer` or `ClusterIssuer` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<IssuerKind>,
    /// Defaults to `cert-manager.io`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum IssuerKind {
    Issuer,
    ClusterIssuer,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// Use this cert-manager issuer instead of the operator's built-in CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ref: Option<IssuerRef>,
    /// Certificate lifetime in hours (default 2160, 90 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 87600").message("durationHours must be between 1 and 87600"))]
    pub duration_hours: Option<i64>,
    /// PEM certificates of further CAs the atServer trusts, for peers and the atDirectory, on top
    /// of the fleet's trust bundle (the operator's CA and the chart's `trustBundle`). A class's
    /// and an Atsign's are both added.
    #[serde(
        default,
        rename = "extraTrustedCAs",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = 65536))]
    pub extra_trusted_cas: Option<String>,
}

/// How clients reach the atServer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum ExposureMode {
    /// In-cluster only: `<name>.<namespace>.svc.<cluster domain>`.
    #[default]
    ClusterIP,
    /// A node port on the address given in `host`.
    NodePort,
    /// A load balancer per atServer.
    LoadBalancer,
    /// SNI passthrough through a Gateway API `TLSRoute`: one load balancer for the fleet.
    TLSRoute,
}

/// The Gateway a `TLSRoute` attaches to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExposureSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ExposureMode>,
    /// Published host. NodePort: a reachable node address (required). LoadBalancer: a DNS name
    /// pointing at the balancer (else its observed address). TLSRoute: the SNI hostname (else
    /// `<name>.<namespace>.<domain>`). ClusterIP: overrides the Service DNS name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// TLSRoute: the fleet domain hostnames are made under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Service port, and the published port except for NodePort (default 6464). For TLSRoute,
    /// the Gateway listener's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("port must be between 1 and 65535"))]
    pub port: Option<i32>,
    /// NodePort: a fixed node port (else the one Kubernetes allocates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 30000 && self <= 32767").message("nodePort must be between 30000 and 32767"))]
    pub node_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayRef>,
    /// LoadBalancer: `spec.loadBalancerClass` of the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_class: Option<String>,
    /// Extra annotations on the Service (cloud load-balancer settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_annotations: Option<BTreeMap<String, String>>,
}
