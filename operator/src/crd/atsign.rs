//! The namespaced `Atsign` resource: one atSign, one atServer.

// kube's derive takes several `printcolumn(...)` lists that legitimately repeat keys.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{ExposureSpec, StorageSpec, TlsSpec};

/// Desired state of one atServer.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "atfleet.dev",
    version = "v1alpha1",
    kind = "Atsign",
    namespaced,
    status = "AtsignStatus",
    shortname = "ats",
    category = "atfleet",
    // The name becomes the StatefulSet's, whose pods carry the label
    // `controller-revision-hash: <name>-<10 characters>` (at most 63), and the Service's (a
    // DNS-1035 label). `size` first: the estimator bounds the regex by it.
    validation = Rule::new(
        "size(self.metadata.name) <= 52 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')"
    ).message(
        "metadata.name must be a DNS-1035 label of at most 52 characters: lower-case letters, digits and '-', starting with a letter and ending with a letter or digit (it names the atServer's StatefulSet and Service, and the StatefulSet's revision label must fit in 63 characters)"
    ),
    doc = "An atSign served by its own atServer: one pod, one volume, one certificate, one directory record.",
    printcolumn(name = "AtSign", type_ = "string", json_path = ".spec.atSign"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Endpoint", type_ = "string", json_path = ".status.endpoint"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    // A string, not a date: kubectl prints a date column as an age, and a future date as
    // "<invalid>".
    printcolumn(
        name = "CertExpiry",
        type_ = "string",
        json_path = ".status.certificate.notAfter"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AtsignSpec {
    /// The atSign in canonical form: `@` then 1–55 lower-case characters, no dots, none of the
    /// reserved punctuation, no whitespace or control characters. Immutable: to serve another
    /// atSign, create another Atsign.
    #[schemars(length(min = 2, max = 56))]
    #[x_kube(
        validation = Rule::new("self == oldSelf").message(Message::Expression(
            "'atSign is immutable: this Atsign serves ' + oldSelf + '; to serve ' + self + ', create a new Atsign (and delete this one)'".into()
        )),
        validation = Rule::new("self.matches('^@[^@.!*\\'`();:&=+$,/?#\\\\[\\\\]{}A-Z\\\\p{Z}\\\\p{Cc}]{1,55}$')").message("atSign must be '@' then 1-55 lower-case characters without dots, whitespace or any of !*'`();:&=+$,/?#[]{}")
    )]
    pub at_sign: String,

    /// Name of the cluster-scoped `AtServerClass` whose defaults apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,

    /// atServer image; overrides the class and the operator default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,

    /// Container resources; override the class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Volume size, storage class and what happens to the data on delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,

    /// Where the certificate comes from: the built-in CA unless an issuer is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,

    /// How the atServer is reached and which address the directory publishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposure: Option<ExposureSpec>,

    /// Hibernate: scale the atServer to zero and withdraw it from the directory, keeping data.
    #[serde(default)]
    pub suspend: bool,
}

/// Lifecycle summary shown in `kubectl get`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Hash)]
pub enum Phase {
    Pending,
    Provisioning,
    Ready,
    Suspended,
    Degraded,
    Terminating,
}

impl Phase {
    pub const ALL: [Phase; 6] = [
        Phase::Pending,
        Phase::Provisioning,
        Phase::Ready,
        Phase::Suspended,
        Phase::Degraded,
        Phase::Terminating,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Provisioning => "Provisioning",
            Phase::Ready => "Ready",
            Phase::Suspended => "Suspended",
            Phase::Degraded => "Degraded",
            Phase::Terminating => "Terminating",
        }
    }
}

/// Observed state, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AtsignStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The published `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `Ready`, `Registered`, `CertificateReady`, `Progressing`, `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<RegistrationStatus>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateStatus {
    /// `BuiltIn` or `CertManager`.
    pub source: String,
    /// RFC 3339 expiry of the serving certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// RFC 3339 time the operator renews it (two thirds into its life).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_time: Option<String>,
    /// Names the certificate is valid for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationStatus {
    /// The `host:port` the directory answers for this atSign.
    pub endpoint: String,
    /// The owner id the record is fenced with.
    pub owner: String,
}
