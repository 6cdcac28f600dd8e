//! Validation and defaulting: an `Atsign`, its class and the operator's defaults become one
//! fully-specified [`Resolved`] spec (the "validate" step of the pipeline).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;

use crate::crd::{
    AtServerClassSpec, Atsign, ExposureMode, ExposureSpec, GatewayRef, IssuerRef, RetentionPolicy,
    RolloutStrategy, SchedulingSpec, StorageSpec, TlsSpec,
};

/// The atServer's TLS port inside the pod and the default published port.
pub const ATPROTOCOL_PORT: i32 = 6464;
/// The atServer's HTTP port (health, readiness, metrics).
pub const HTTP_PORT: i32 = 8080;

/// Operator-wide defaults, from its command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    pub image: String,
    pub root_server: String,
    pub cluster_domain: String,
    pub storage_size: String,
    pub cert_duration_hours: i64,
    /// The fleet's trust bundle (PEM): CAs every atServer trusts besides the operator's own, above
    /// all the atDirectory's (the chart's `trustBundle` ConfigMap, read from a file).
    pub trust_bundle: String,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            image: "ghcr.io/atfleet/atserver:latest".into(),
            root_server: "atdirectory.atfleet-system.svc.cluster.local:64".into(),
            cluster_domain: "cluster.local".into(),
            storage_size: "1Gi".into(),
            cert_duration_hours: 2160,
            trust_bundle: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedExposure {
    pub mode: ExposureMode,
    pub host: Option<String>,
    pub domain: Option<String>,
    pub port: i32,
    pub node_port: Option<i32>,
    pub gateway: Option<GatewayRef>,
    pub load_balancer_class: Option<String>,
    pub service_annotations: BTreeMap<String, String>,
}

/// Everything the builders need, with every default applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub name: String,
    pub namespace: String,
    pub at_sign: String,
    pub image: String,
    pub image_pull_policy: Option<String>,
    pub image_pull_secrets: Option<Vec<k8s_openapi::api::core::v1::LocalObjectReference>>,
    /// The Atsign's, else the class's, else [`default_resources`]: never none, so a pod is never
    /// BestEffort (first evicted, no memory bound).
    pub resources: ResourceRequirements,
    /// The class's placement.
    pub scheduling: SchedulingSpec,
    pub storage_size: Quantity,
    pub storage_class_name: Option<String>,
    pub retention: RetentionPolicy,
    pub issuer: Option<IssuerRef>,
    pub cert_duration_hours: i64,
    pub exposure: ResolvedExposure,
    pub suspend: bool,
    pub root_server: String,
    pub cluster_domain: String,
    pub rollout: RolloutStrategy,
    /// CAs the atServer trusts besides the one that issued its own certificate (PEM): the
    /// fleet's bundle, then the class's and the Atsign's `tls.extraTrustedCAs`.
    pub trust_bundle: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("the Atsign has no namespace")]
    NoNamespace,
    #[error("spec.atSign {0:?}: {1}")]
    InvalidAtSign(String, crate::atsign::AtSignError),
    #[error("NodePort exposure needs exposure.host: a node address clients can reach")]
    NodePortNeedsHost,
    #[error("TLSRoute exposure needs exposure.gateway")]
    TlsRouteNeedsGateway,
    #[error("TLSRoute exposure needs exposure.host or exposure.domain")]
    TlsRouteNeedsHost,
    #[error(
        "spec.storage.size must be a whole number of bytes with an optional suffix, got {0:?}"
    )]
    BadStorageSize(String),
}

impl ResolveError {
    /// Short PascalCase reason for conditions, events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ResolveError::NoNamespace => "NoNamespace",
            ResolveError::InvalidAtSign(..) => "InvalidAtSign",
            ResolveError::NodePortNeedsHost
            | ResolveError::TlsRouteNeedsGateway
            | ResolveError::TlsRouteNeedsHost => "InvalidExposure",
            ResolveError::BadStorageSize(_) => "InvalidStorage",
        }
    }
}

/// The field of `atsign` if set, else that of `class`.
fn pick<T: Clone>(atsign: Option<&T>, class: Option<&T>) -> Option<T> {
    atsign.or(class).cloned()
}

pub fn resolve(
    atsign: &Atsign,
    class: Option<&AtServerClassSpec>,
    defaults: &Defaults,
) -> Result<Resolved, ResolveError> {
    let spec = &atsign.spec;
    let namespace = atsign.namespace().ok_or(ResolveError::NoNamespace)?;
    crate::atsign::validate(&spec.at_sign)
        .map_err(|e| ResolveError::InvalidAtSign(spec.at_sign.clone(), e))?;

    let storage = merge_storage(
        spec.storage.as_ref(),
        class.and_then(|c| c.storage.as_ref()),
    );
    let size = storage
        .size
        .unwrap_or_else(|| Quantity(defaults.storage_size.clone()));
    if crate::quantity::bytes(&size).is_none() {
        return Err(ResolveError::BadStorageSize(size.0));
    }
    let tls = merge_tls(spec.tls.as_ref(), class.and_then(|c| c.tls.as_ref()));
    let trust_bundle = trust_bundle(
        &defaults.trust_bundle,
        [
            class
                .and_then(|c| c.tls.as_ref())
                .and_then(|t| t.extra_trusted_cas.as_deref()),
            spec.tls
                .as_ref()
                .and_then(|t| t.extra_trusted_cas.as_deref()),
        ],
    );
    let exposure = resolve_exposure(
        spec.exposure.as_ref(),
        class.and_then(|c| c.exposure.as_ref()),
    )?;

    Ok(Resolved {
        name: atsign.name_any(),
        namespace,
        at_sign: spec.at_sign.clone(),
        image: pick(spec.image.as_ref(), class.and_then(|c| c.image.as_ref()))
            .unwrap_or_else(|| defaults.image.clone()),
        image_pull_policy: class
            .and_then(|c| c.image_pull_policy)
            .map(|p| p.as_str().to_owned()),
        image_pull_secrets: class.and_then(|c| c.image_pull_secrets.clone()),
        resources: pick(
            spec.resources.as_ref(),
            class.and_then(|c| c.resources.as_ref()),
        )
        .unwrap_or_else(default_resources),
        scheduling: class.and_then(|c| c.scheduling.clone()).unwrap_or_default(),
        storage_size: size,
        storage_class_name: storage.storage_class_name,
        retention: storage.retention.unwrap_or_default(),
        issuer: tls.issuer_ref,
        cert_duration_hours: tls.duration_hours.unwrap_or(defaults.cert_duration_hours),
        exposure,
        suspend: spec.suspend,
        root_server: class
            .and_then(|c| c.root_server.clone())
            .unwrap_or_else(|| defaults.root_server.clone()),
        cluster_domain: defaults.cluster_domain.clone(),
        rollout: class
            .and_then(|c| c.rollout.as_ref())
            .and_then(|r| r.strategy)
            .unwrap_or_default(),
        trust_bundle,
    })
}

/// What an atServer gets when neither its Atsign nor its class says: a request that schedules
/// it fairly (Burstable, not BestEffort) and a memory limit that bounds a leak. An idle atServer
/// uses a few MiB; the limit leaves room for a busy one.
pub fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("10m".into())),
            ("memory".to_owned(), Quantity("32Mi".into())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity("256Mi".into()),
        )])),
        ..ResourceRequirements::default()
    }
}

/// The fleet's bundle followed by the extra CAs, each part ending in one newline; blank parts
/// are left out.
fn trust_bundle<'a>(fleet: &'a str, extra: impl IntoIterator<Item = Option<&'a str>>) -> String {
    std::iter::once(Some(fleet))
        .chain(extra)
        .flatten()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .fold(String::new(), |mut out, part| {
            out.push_str(part);
            out.push('\n');
            out
        })
}

fn merge_storage(a: Option<&StorageSpec>, c: Option<&StorageSpec>) -> StorageSpec {
    StorageSpec {
        size: pick(
            a.and_then(|s| s.size.as_ref()),
            c.and_then(|s| s.size.as_ref()),
        ),
        storage_class_name: pick(
            a.and_then(|s| s.storage_class_name.as_ref()),
            c.and_then(|s| s.storage_class_name.as_ref()),
        ),
        retention: pick(
            a.and_then(|s| s.retention.as_ref()),
            c.and_then(|s| s.retention.as_ref()),
        ),
    }
}

fn merge_tls(a: Option<&TlsSpec>, c: Option<&TlsSpec>) -> TlsSpec {
    TlsSpec {
        issuer_ref: pick(
            a.and_then(|t| t.issuer_ref.as_ref()),
            c.and_then(|t| t.issuer_ref.as_ref()),
        ),
        duration_hours: pick(
            a.and_then(|t| t.duration_hours.as_ref()),
            c.and_then(|t| t.duration_hours.as_ref()),
        ),
        // Not merged: both the class's and the Atsign's go into `Resolved::trust_bundle`.
        extra_trusted_cas: None,
    }
}

fn resolve_exposure(
    a: Option<&ExposureSpec>,
    c: Option<&ExposureSpec>,
) -> Result<ResolvedExposure, ResolveError> {
    let mode = pick(
        a.and_then(|e| e.mode.as_ref()),
        c.and_then(|e| e.mode.as_ref()),
    )
    .unwrap_or_default();
    let host = pick(
        a.and_then(|e| e.host.as_ref()),
        c.and_then(|e| e.host.as_ref()),
    );
    let domain = pick(
        a.and_then(|e| e.domain.as_ref()),
        c.and_then(|e| e.domain.as_ref()),
    );
    let gateway = pick(
        a.and_then(|e| e.gateway.as_ref()),
        c.and_then(|e| e.gateway.as_ref()),
    );
    match mode {
        ExposureMode::NodePort if host.is_none() => return Err(ResolveError::NodePortNeedsHost),
        ExposureMode::TLSRoute if gateway.is_none() => {
            return Err(ResolveError::TlsRouteNeedsGateway)
        }
        ExposureMode::TLSRoute if host.is_none() && domain.is_none() => {
            return Err(ResolveError::TlsRouteNeedsHost)
        }
        _ => {}
    }
    // Annotations merge key by key, the Atsign's winning.
    let mut service_annotations = c
        .and_then(|e| e.service_annotations.clone())
        .unwrap_or_default();
    service_annotations.extend(
        a.and_then(|e| e.service_annotations.clone())
            .unwrap_or_default(),
    );
    Ok(ResolvedExposure {
        mode,
        host,
        domain,
        port: pick(
            a.and_then(|e| e.port.as_ref()),
            c.and_then(|e| e.port.as_ref()),
        )
        .unwrap_or(ATPROTOCOL_PORT),
        node_port: pick(
            a.and_then(|e| e.node_port.as_ref()),
            c.and_then(|e| e.node_port.as_ref()),
        ),
        gateway,
        load_balancer_class: pick(
            a.and_then(|e| e.load_balancer_class.as_ref()),
            c.and_then(|e| e.load_balancer_class.as_ref()),
        ),
        service_annotations,
    })
}
