//! Snapshot tests of every child the pure builder produces for a representative set of specs.
//! Expected YAML lives in `tests/snapshots/`; `UPDATE_SNAPSHOTS=1 cargo test -p atfleet-operator
//! --test builders` rewrites it after a deliberate change.

use std::path::PathBuf;

use atfleet_operator::build::{build, Children, Materials, TlsMaterial, TlsRouteVersion};
use atfleet_operator::crd::{AtServerClassSpec, Atsign, AtsignSpec};
use atfleet_operator::endpoint::static_host;
use atfleet_operator::resolve::{resolve, Defaults};
use kube::api::ObjectMeta;
use serde_json::json;

fn atsign(spec: serde_json::Value) -> Atsign {
    let spec: AtsignSpec = serde_json::from_value(spec).expect("spec");
    let mut a = Atsign::new("alice", spec);
    a.metadata = ObjectMeta {
        name: Some("alice".into()),
        namespace: Some("fleet".into()),
        uid: Some("11111111-2222-3333-4444-555555555555".into()),
        generation: Some(1),
        ..ObjectMeta::default()
    };
    a
}

fn class(spec: serde_json::Value) -> AtServerClassSpec {
    serde_json::from_value(spec).expect("class")
}

const OPERATOR_CA: &str = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
const ISSUER_CA: &str = "-----BEGIN CERTIFICATE-----\nISSUER CA\n-----END CERTIFICATE-----\n";

/// With `builtin`, the operator's CA issued the leaf; else cert-manager did, writing a `ca.crt`
/// (a CA issuer's [`ISSUER_CA`]).
fn materials(builtin: bool, host: Option<String>) -> Materials {
    Materials {
        cram_secret: "b1c2".repeat(32),
        builtin_tls: builtin.then(|| TlsMaterial {
            cert_pem: "-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----\n".into(),
            key_pem: "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n".into(),
            ca_pem: OPERATOR_CA.into(),
        }),
        issuer_cas: vec![if builtin { OPERATOR_CA } else { ISSUER_CA }.into()],
        host,
        tls_route_version: TlsRouteVersion::V1Alpha2,
    }
}

fn render(children: &Children) -> String {
    let mut docs: Vec<serde_json::Value> = vec![
        serde_json::to_value(&children.cram_secret).expect("json"),
        serde_json::to_value(&children.pvc).expect("json"),
        serde_json::to_value(&children.service).expect("json"),
        serde_json::to_value(&children.statefulset).expect("json"),
    ];
    for extra in [
        children
            .tls_secret
            .as_ref()
            .map(|s| serde_json::to_value(s).expect("json")),
        children
            .trust_config_map
            .as_ref()
            .map(|c| serde_json::to_value(c).expect("json")),
        children
            .certificate
            .as_ref()
            .map(|c| serde_json::to_value(c).expect("json")),
        children
            .tls_route
            .as_ref()
            .map(|r| serde_json::to_value(r).expect("json")),
    ]
    .into_iter()
    .flatten()
    {
        docs.push(extra);
    }
    docs.iter()
        .map(|d| serde_yaml::to_string(d).expect("yaml"))
        .collect::<Vec<_>>()
        .join("---\n")
}

fn snapshot(name: &str, atsign: &Atsign, class: Option<&AtServerClassSpec>, builtin: bool) {
    snapshot_with(name, atsign, class, builtin, &Defaults::default());
}

fn snapshot_with(
    name: &str,
    atsign: &Atsign,
    class: Option<&AtServerClassSpec>,
    builtin: bool,
    defaults: &Defaults,
) {
    let resolved = resolve(atsign, class, defaults).expect("resolves");
    let m = materials(builtin, static_host(&resolved));
    snapshot_of(name, &build(atsign, &resolved, &m));
}

fn snapshot_of(name: &str, children: &Children) {
    let actual = render(children);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.yaml"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing {}; run with UPDATE_SNAPSHOTS=1", path.display()));
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name}: builder output differs from {} from line {}:\n  expected: {:?}\n  actual:   {:?}\nrerun with UPDATE_SNAPSHOTS=1 if the change is intended",
            path.display(),
            first + 1,
            expected.lines().nth(first),
            actual.lines().nth(first),
        );
    }
}

#[test]
fn cluster_ip_with_defaults() {
    snapshot(
        "clusterip-defaults",
        &atsign(json!({ "atSign": "@alice" })),
        None,
        true,
    );
}

#[test]
fn node_port_from_class_with_resources_and_delete_retention() {
    let class = class(json!({
        "image": "registry.example/atserver:1.2.3",
        "imagePullPolicy": "IfNotPresent",
        "resources": { "requests": { "cpu": "50m", "memory": "64Mi" }, "limits": { "memory": "256Mi" } },
        "storage": { "size": "2Gi", "storageClassName": "fast", "retention": "Delete" },
        "exposure": { "mode": "NodePort", "host": "node1.example.net" },
        "rootServer": "root.fleet.example:64",
    }));
    let a = atsign(
        json!({ "atSign": "@alice", "className": "standard", "exposure": { "nodePort": 31001 } }),
    );
    snapshot("nodeport-class", &a, Some(&class), true);
}

#[test]
fn load_balancer_with_cert_manager() {
    let a = atsign(json!({
        "atSign": "@alice",
        "image": "registry.example/atserver:canary",
        "tls": { "issuerRef": { "name": "letsencrypt", "kind": "ClusterIssuer" }, "durationHours": 720 },
        "exposure": {
            "mode": "LoadBalancer",
            "host": "alice.atsign.example.com",
            "port": 7001,
            "loadBalancerClass": "example.com/lb",
            "serviceAnnotations": { "lb.example.com/proxy-protocol": "false" }
        },
    }));
    snapshot("loadbalancer-certmanager", &a, None, false);
}

#[test]
fn tls_route_through_a_gateway() {
    let a = atsign(json!({
        "atSign": "@alice🛠",
        "exposure": {
            "mode": "TLSRoute",
            "domain": "atsign.example.com",
            "port": 443,
            "gateway": { "name": "fleet", "namespace": "gateways", "sectionName": "atprotocol" }
        },
    }));
    snapshot("tlsroute", &a, None, true);
}

/// Gateway API 1.5 and later serve TLSRoute as `v1`: the same route under that apiVersion.
#[test]
fn tls_route_as_v1_when_the_cluster_serves_it() {
    let a = atsign(json!({
        "atSign": "@alice",
        "exposure": { "mode": "TLSRoute", "domain": "atsign.example.com", "port": 443,
                      "gateway": { "name": "fleet", "namespace": "gateways" } },
    }));
    let r = resolve(&a, None, &Defaults::default()).expect("resolves");
    let mut m = materials(true, static_host(&r));
    let alpha = build(&a, &r, &m).tls_route.expect("route");
    m.tls_route_version = TlsRouteVersion::V1;
    let v1 = build(&a, &r, &m).tls_route.expect("route");
    assert_eq!(
        alpha.types.as_ref().map(|t| t.api_version.as_str()),
        Some("gateway.networking.k8s.io/v1alpha2")
    );
    assert_eq!(
        v1.types.as_ref().map(|t| t.api_version.as_str()),
        Some("gateway.networking.k8s.io/v1")
    );
    assert_eq!(alpha.data, v1.data, "the spec is the same in both versions");
}

const DIRECTORY_CA: &str = "-----BEGIN CERTIFICATE-----\nDIRECTORY CA\n-----END CERTIFICATE-----\n";

fn fleet_defaults() -> Defaults {
    Defaults {
        trust_bundle: DIRECTORY_CA.into(),
        ..Defaults::default()
    }
}

/// The fleet's trust bundle (the chart's atDirectory CA), a class's and an Atsign's extra CAs:
/// all in the TLS Secret's `trust-bundle.crt` after the operator's CA, which the pod trusts.
#[test]
fn trust_bundle_of_the_fleet_the_class_and_the_atsign() {
    let class = class(json!({
        "tls": { "extraTrustedCAs": "-----BEGIN CERTIFICATE-----\nCLASS CA\n-----END CERTIFICATE-----" },
    }));
    let a = atsign(json!({
        "atSign": "@alice",
        "className": "partners",
        "tls": { "extraTrustedCAs": "-----BEGIN CERTIFICATE-----\nPARTNER CA\n-----END CERTIFICATE-----\n\n" },
    }));
    snapshot_with("trust-bundle", &a, Some(&class), true, &fleet_defaults());
}

/// A change of the fleet's bundle rolls the pod (the atServer reads its CA bundle at start);
/// the same bundle builds the same pod template.
#[test]
fn trust_bundle_change_rolls_the_pod() {
    let a = atsign(json!({ "atSign": "@alice" }));
    let template = |defaults: &Defaults| {
        let r = resolve(&a, None, defaults).expect("resolves");
        build(&a, &r, &materials(true, static_host(&r)))
            .statefulset
            .spec
            .template
    };
    let before = template(&fleet_defaults());
    assert_eq!(before, template(&fleet_defaults()));
    let rotated = Defaults {
        trust_bundle: format!(
            "{DIRECTORY_CA}-----BEGIN CERTIFICATE-----\nNEXT DIRECTORY CA\n-----END CERTIFICATE-----\n"
        ),
        ..Defaults::default()
    };
    let after = template(&rotated);
    let checksum = |t: &k8s_openapi::api::core::v1::PodTemplateSpec| {
        t.metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get("atfleet.dev/trust-checksum"))
            .cloned()
            .expect("trust checksum annotation")
    };
    assert_ne!(checksum(&before), checksum(&after));
}

/// An ACME issuer writes no `ca.crt`: the pod trusts the fleet's bundle from its own ConfigMap
/// and is never pointed at a file that does not exist.
#[test]
fn cert_manager_without_ca_crt_trusts_the_fleet_bundle() {
    let a = atsign(json!({
        "atSign": "@alice",
        "tls": { "issuerRef": { "name": "letsencrypt" } },
        "exposure": { "host": "alice.atsign.example.com" },
    }));
    let r = resolve(&a, None, &fleet_defaults()).expect("resolves");
    let mut m = materials(false, static_host(&r));
    m.issuer_cas.clear();
    let children = build(&a, &r, &m);
    snapshot_of("certmanager-acme", &children);
    let args = |c: &Children| {
        c.statefulset
            .spec
            .template
            .spec
            .as_ref()
            .and_then(|p| p.containers.first())
            .and_then(|c| c.args.clone())
            .unwrap_or_default()
    };
    assert!(!args(&children).iter().any(|a| a.ends_with("ca.crt")));

    // Nothing to trust at all: no --ca-bundle rather than an empty file the server refuses.
    let bare = resolve(&a, None, &Defaults::default()).expect("resolves");
    let children = build(&a, &bare, &m);
    assert!(!args(&children).iter().any(|a| a == "--ca-bundle"));
}

/// A renewed certificate (new leaf and key from the same CA) builds the same StatefulSet: the
/// atServer reloads its certificate in place, so renewal rolls no pod. Only the TLS Secret changes.
#[test]
fn renewal_changes_the_secret_but_not_the_pod_template() {
    let a = atsign(json!({ "atSign": "@alice" }));
    let r = resolve(&a, None, &fleet_defaults()).expect("resolves");
    let before = materials(true, static_host(&r));
    let mut renewed = before.clone();
    if let Some(t) = renewed.builtin_tls.as_mut() {
        t.cert_pem = "-----BEGIN CERTIFICATE-----\nRENEWED\n-----END CERTIFICATE-----\n".into();
        t.key_pem = "-----BEGIN PRIVATE KEY-----\nNEW KEY\n-----END PRIVATE KEY-----\n".into();
    }
    let (old, new) = (build(&a, &r, &before), build(&a, &r, &renewed));
    assert_eq!(old.statefulset, new.statefulset);
    assert_ne!(old.tls_secret, new.tls_secret);

    // A second CA in the bundle (one being rotated in) is a trust change: that does roll.
    let mut rotating = before.clone();
    rotating.issuer_cas.push(ISSUER_CA.into());
    assert_ne!(
        old.statefulset.spec.template,
        build(&a, &r, &rotating).statefulset.spec.template
    );
}

/// A class's placement and pull secrets reach the pod spec as they are.
#[test]
fn scheduling_knobs_from_the_class() {
    let class = class(json!({
        "imagePullSecrets": [{ "name": "registry-creds" }],
        "scheduling": {
            "nodeSelector": { "atfleet.dev/pool": "atservers" },
            "tolerations": [{ "key": "dedicated", "operator": "Equal", "value": "atservers", "effect": "NoSchedule" }],
            "affinity": { "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{ "matchExpressions": [
                    { "key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"] }] }] } } },
            "topologySpreadConstraints": [{ "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": { "matchLabels": { "app.kubernetes.io/name": "atserver" } } }],
            "priorityClassName": "atservers",
        },
    }));
    let a = atsign(json!({ "atSign": "@alice", "className": "placed" }));
    snapshot("scheduling-class", &a, Some(&class), true);
}

#[test]
fn suspended_with_on_delete_rollout() {
    let class = class(json!({ "rollout": { "strategy": "OnDelete" } }));
    let a = atsign(
        json!({ "atSign": "@alice", "className": "manual", "suspend": true, "storage": { "size": "5Gi" } }),
    );
    snapshot("suspended-ondelete", &a, Some(&class), true);
}

#[test]
fn invalid_specs_are_refused_before_building() {
    let nodeport_without_host =
        atsign(json!({ "atSign": "@alice", "exposure": { "mode": "NodePort" } }));
    assert!(resolve(&nodeport_without_host, None, &Defaults::default()).is_err());
    let route_without_gateway = atsign(
        json!({ "atSign": "@alice", "exposure": { "mode": "TLSRoute", "domain": "x.example" } }),
    );
    assert!(resolve(&route_without_gateway, None, &Defaults::default()).is_err());
    let bad_size = atsign(json!({ "atSign": "@alice", "storage": { "size": "lots" } }));
    assert!(resolve(&bad_size, None, &Defaults::default()).is_err());
    let bad_atsign = atsign(json!({ "atSign": "@Alice" }));
    assert!(resolve(&bad_atsign, None, &Defaults::default()).is_err());
}
