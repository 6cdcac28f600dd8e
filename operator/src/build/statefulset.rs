//! The StatefulSet running one hardened atServer pod (zero when suspended).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    HTTPGetAction, PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec,
    Probe, SeccompProfile, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::names::{
    cram_secret_name, pvc_name, selector_labels, service_name, statefulset_name, tls_secret_name,
    trust_config_map_name, CRAM_KEY, PORT_NAME, TRUST_BUNDLE_KEY, TRUST_CHECKSUM_ANNOTATION,
};
use super::object::meta;
use crate::crd::RolloutStrategy;
use crate::resolve::{Resolved, ATPROTOCOL_PORT, HTTP_PORT};

/// The atServer image's unprivileged user.
const UID: i64 = 1024;
const DATA_DIR: &str = "/data";
const TLS_DIR: &str = "/etc/atserver/tls";
const CRAM_DIR: &str = "/etc/atserver/cram";
/// The trust ConfigMap's mount (cert-manager only; the built-in CA's is in the TLS Secret).
const TRUST_DIR: &str = "/etc/atserver/trust";

/// `trust` is the pod's whole trust bundle (see [`super::trust`]); empty, the pod gets none.
pub fn statefulset(r: &Resolved, trust: &str, owner: &OwnerReference) -> StatefulSet {
    let mut pod_labels = super::names::labels(r);
    pod_labels.extend(selector_labels(r));
    // The certificate itself is deliberately absent: the atServer reloads it in place.
    let annotations = (!trust.is_empty()).then(|| {
        BTreeMap::from([(
            TRUST_CHECKSUM_ANNOTATION.to_owned(),
            super::names::trust_checksum(trust),
        )])
    });
    StatefulSet {
        metadata: meta(statefulset_name(&r.name), r, Some(owner)),
        spec: StatefulSetSpec {
            replicas: Some(if r.suspend { 0 } else { 1 }),
            service_name: Some(service_name(&r.name)),
            selector: LabelSelector {
                match_labels: Some(selector_labels(r)),
                ..LabelSelector::default()
            },
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some(
                    match r.rollout {
                        RolloutStrategy::RollingUpdate => "RollingUpdate",
                        RolloutStrategy::OnDelete => "OnDelete",
                    }
                    .into(),
                ),
                ..StatefulSetUpdateStrategy::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations,
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(r, !trust.is_empty())),
            },
            ..StatefulSetSpec::default()
        },
        ..StatefulSet::default()
    }
}

fn pod_spec(r: &Resolved, trusts: bool) -> PodSpec {
    let mut volumes = vec![
        Volume {
            name: "data".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: pvc_name(&r.name),
                read_only: None,
            }),
            ..Volume::default()
        },
        secret_volume("tls", tls_secret_name(&r.name)),
        secret_volume("cram", cram_secret_name(&r.name)),
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
    ];
    if r.issuer.is_some() {
        volumes.push(Volume {
            name: "trust".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: trust_config_map_name(&r.name),
                default_mode: Some(0o444),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    PodSpec {
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(30),
        security_context: Some(PodSecurityContext {
            run_as_user: Some(UID),
            run_as_group: Some(UID),
            fs_group: Some(UID),
            run_as_non_root: Some(true),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        containers: vec![container(r, trusts)],
        volumes: Some(volumes),
        image_pull_secrets: r.image_pull_secrets.clone(),
        node_selector: r.scheduling.node_selector.clone(),
        tolerations: r.scheduling.tolerations.clone(),
        affinity: r.scheduling.affinity.clone(),
        topology_spread_constraints: r.scheduling.topology_spread_constraints.clone(),
        priority_class_name: r.scheduling.priority_class_name.clone(),
        ..PodSpec::default()
    }
}

fn container(r: &Resolved, trusts: bool) -> Container {
    let args = [
        Some(("--atsign", r.at_sign.clone())),
        Some(("--listen", format!("0.0.0.0:{ATPROTOCOL_PORT}"))),
        Some(("--http-listen", format!("0.0.0.0:{HTTP_PORT}"))),
        Some(("--data-dir", DATA_DIR.to_owned())),
        Some(("--tls-cert", format!("{TLS_DIR}/tls.crt"))),
        Some(("--tls-key", format!("{TLS_DIR}/tls.key"))),
        // An empty bundle would stop the server at start; without one it still serves clients.
        trusts.then(|| ("--ca-bundle", ca_bundle(r))),
        Some(("--root-server", r.root_server.clone())),
        Some(("--cram-secret-file", format!("{CRAM_DIR}/{CRAM_KEY}"))),
        Some(("--log-format", "json".to_owned())),
    ]
    .into_iter()
    .flatten()
    .flat_map(|(flag, value)| [flag.to_owned(), value])
    .collect();
    let mut mounts = vec![
        mount("data", DATA_DIR, false),
        mount("tls", TLS_DIR, true),
        mount("cram", CRAM_DIR, true),
        mount("tmp", "/tmp", false),
    ];
    if r.issuer.is_some() {
        mounts.push(mount("trust", TRUST_DIR, true));
    }
    Container {
        name: "atserver".into(),
        image: Some(r.image.clone()),
        image_pull_policy: r.image_pull_policy.clone(),
        args: Some(args),
        ports: Some(vec![
            ContainerPort {
                name: Some(PORT_NAME.into()),
                container_port: ATPROTOCOL_PORT,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("http".into()),
                container_port: HTTP_PORT,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
        ]),
        resources: Some(r.resources.clone()),
        readiness_probe: Some(http_probe("/readyz", 2, 5)),
        liveness_probe: Some(http_probe("/healthz", 10, 10)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

/// With the built-in CA the operator writes the trust bundle into the TLS Secret; cert-manager
/// writes that Secret (with a `ca.crt` or, from ACME issuers, without), so the bundle has its own
/// ConfigMap.
fn ca_bundle(r: &Resolved) -> String {
    match r.issuer {
        None => format!("{TLS_DIR}/{TRUST_BUNDLE_KEY}"),
        Some(_) => format!("{TRUST_DIR}/{TRUST_BUNDLE_KEY}"),
    }
}

fn http_probe(path: &str, initial_delay: i32, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

fn secret_volume(name: &str, secret: String) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret),
            default_mode: Some(0o440),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}
