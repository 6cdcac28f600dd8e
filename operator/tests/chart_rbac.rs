//! The Helm chart's RBAC against what the operator really does: the controller runs against
//! kubesim through a full lifecycle (create, update, suspend, leader hand-over, resume, delete; a
//! cert-manager issuer and a TLSRoute too), every request it makes is taken from kubesim's audit
//! log, and each must be allowed by the rules `helm template` renders for the operator's
//! ServiceAccount. The rendered rules must also equal the documented grant list below: a new
//! permission has to be added here, on purpose, with its reason.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use atfleet_e2e::kubesim::{AuditEvent, Handle};
use atfleet_operator::crd::{AtServerClass, Atsign, Phase};
use atfleet_operator::directory::DirectoryClient;
use atfleet_operator::leader::{LeaderElector, LeaseConfig};
use atfleet_operator::metrics::Metrics;
use common::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::Api;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// The chart is rendered as release `atfleet` in this namespace (where the Lease and CA live).
const RELEASE: &str = "atfleet";
const SERVICE_ACCOUNT: &str = "atfleet-operator";
/// Marks the operator's requests in the audit log (the test's own requests are not the operator's).
const USER_AGENT: &str = "atfleet-operator/rbac-test";

/// One permission: (scope, apiGroup, resource[/subresource], verb, resourceName). Scope is
/// `cluster` for a ClusterRoleBinding, else the namespace of the RoleBinding.
type Grant = (String, String, String, String, String);

/// What the operator may do in each namespace it manages, and why.
const PER_NAMESPACE: &[(&str, &str, &[&str])] = &[
    // The watched resource; the finalizer is added and removed with JSON patches.
    ("atfleet.dev", "atsigns", &["list", "watch", "patch"]),
    ("atfleet.dev", "atsigns/status", &["patch"]),
    // Owned children: watched, server-side applied; the StatefulSet is deleted first on retire.
    (
        "apps",
        "statefulsets",
        &["get", "list", "watch", "patch", "delete"],
    ),
    ("", "services", &["get", "list", "watch", "patch"]),
    // CRAM and TLS Secrets: watched by label, applied, deleted under the Delete retention policy.
    ("", "secrets", &["get", "list", "watch", "patch", "delete"]),
    ("", "persistentvolumeclaims", &["get", "patch", "delete"]),
    // The finalizer waits until the atServer's pod is gone.
    ("", "pods", &["list"]),
    ("cert-manager.io", "certificates", &["get", "patch"]),
    ("gateway.networking.k8s.io", "tlsroutes", &["get", "patch"]),
    // Events on Atsigns; patch when the recorder folds repeats into a series.
    ("events.k8s.io", "events", &["create"]),
];
/// Cluster-scoped reads, in both modes: classes are cluster-scoped.
const CLUSTER: &[(&str, &str, &[&str])] =
    &[("atfleet.dev", "atserverclasses", &["get", "list", "watch"])];
/// In the operator's own namespace: the leader Lease, and the built-in CA Secret (read by name,
/// created once).
const SELF: &[(&str, &str, &[&str], &str)] = &[
    (
        "coordination.k8s.io",
        "leases",
        &["get", "create", "update"],
        "",
    ),
    ("", "secrets", &["get"], "atfleet-ca"),
    ("", "secrets", &["create"], ""),
];
/// Grants the scenario need not reach.
const NOT_EXERCISED: &[(&str, &str, &str)] = &[
    // Classes are read from the watch cache; a class is read by name only when the cache has not
    // seen it yet, which depends on timing.
    ("atfleet.dev", "atserverclasses", "get"),
];

fn documented(watch: &[&str]) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    let mut add = |scope: &str, group: &str, resource: &str, verbs: &[&str], name: &str| {
        for verb in verbs {
            out.insert((
                scope.to_owned(),
                group.to_owned(),
                resource.to_owned(),
                (*verb).to_owned(),
                name.to_owned(),
            ));
        }
    };
    for (group, resource, verbs) in CLUSTER {
        add("cluster", group, resource, verbs, "");
    }
    let scopes: Vec<&str> = if watch.is_empty() {
        vec!["cluster"]
    } else {
        watch.to_vec()
    };
    for scope in scopes {
        for (group, resource, verbs) in PER_NAMESPACE {
            add(scope, group, resource, verbs, "");
        }
    }
    for (group, resource, verbs, name) in SELF {
        add(SYSTEM_NS, group, resource, verbs, name);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Rendering the chart.

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// helm from the packaging tools (`make test` exports their directory as ATFLEET_TOOLS_BIN).
fn helm() -> PathBuf {
    if let Some(bin) = std::env::var_os("ATFLEET_TOOLS_BIN").filter(|b| !b.is_empty()) {
        return PathBuf::from(bin).join("helm");
    }
    let out = std::process::Command::new(repo_root().join("scripts/tools-env"))
        .output()
        .expect("scripts/tools-env runs");
    assert!(
        out.status.success(),
        "scripts/tools-env: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("helm")
}

/// The chart's RBAC objects as JSON, rendered with `set` (helm --set syntax).
fn render_rbac(set: &[&str]) -> Vec<Value> {
    let mut cmd = std::process::Command::new(helm());
    cmd.args(["template", RELEASE])
        .arg(repo_root().join("charts/atfleet"))
        .args([
            "--namespace",
            SYSTEM_NS,
            "--show-only",
            "templates/operator-rbac.yaml",
        ]);
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().expect("helm runs");
    assert!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("rendered YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Every grant the rendered objects give the operator's ServiceAccount.
fn grants(objects: &[Value]) -> BTreeSet<Grant> {
    let find = |kind: &str, name: &str, ns: Option<&str>| {
        objects
            .iter()
            .find(|o| {
                o["kind"] == kind
                    && o["metadata"]["name"] == name
                    && o["metadata"]["namespace"].as_str() == ns
            })
            .unwrap_or_else(|| panic!("{kind} {name} is rendered"))
    };
    let mut out = BTreeSet::new();
    for binding in objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRoleBinding" || o["kind"] == "RoleBinding")
    {
        let ours = binding["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| {
                s["kind"] == "ServiceAccount"
                    && s["name"] == SERVICE_ACCOUNT
                    && s["namespace"] == SYSTEM_NS
            });
        if !ours {
            continue;
        }
        let binding_ns = binding["metadata"]["namespace"].as_str();
        let role_ref = &binding["roleRef"];
        let role_name = role_ref["name"].as_str().expect("roleRef.name");
        let role = match role_ref["kind"].as_str() {
            Some("ClusterRole") => find("ClusterRole", role_name, None),
            _ => find("Role", role_name, binding_ns),
        };
        let scope = binding_ns.unwrap_or("cluster");
        for rule in role["rules"].as_array().into_iter().flatten() {
            let names = strings(&rule["resourceNames"]);
            let names = if names.is_empty() {
                vec![String::new()]
            } else {
                names
            };
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    for verb in strings(&rule["verbs"]) {
                        for name in &names {
                            out.insert((
                                scope.to_owned(),
                                group.clone(),
                                resource.clone(),
                                verb.clone(),
                                name.clone(),
                            ));
                        }
                    }
                }
            }
        }
    }
    out
}

fn resource_of(e: &AuditEvent) -> String {
    if e.subresource.is_empty() {
        e.resource.clone()
    } else {
        format!("{}/{}", e.resource, e.subresource)
    }
}

/// Whether the grants allow one audited request, as the Kubernetes RBAC authorizer decides it
/// (no wildcards are granted, so none are interpreted).
fn allowed(grants: &BTreeSet<Grant>, e: &AuditEvent) -> bool {
    let resource = resource_of(e);
    grants.iter().any(|(scope, group, res, verb, name)| {
        let scope_ok = scope == "cluster" || (!e.namespace.is_empty() && *scope == e.namespace);
        let name_ok = name.is_empty() || *name == e.name;
        scope_ok && *group == e.group && *res == resource && *verb == e.verb && name_ok
    })
}

// ---------------------------------------------------------------------------------------------
// The scenario.

fn operator_client(sim: &Handle) -> kube::Client {
    let mut config = kube::Config::new(sim.url().parse().expect("kubesim URL"));
    config.headers.push((
        hyper::header::USER_AGENT,
        hyper::header::HeaderValue::from_static(USER_AGENT),
    ));
    kube::Client::try_from(config).expect("operator client")
}

fn replica(client: &kube::Client, dir: &Directory, identity: &str, watch: &[&str]) -> Replica {
    let directory = DirectoryClient::new(&dir.url, Some(TOKEN.into()), None)
        .expect("directory client")
        .with_timeout(Duration::from_secs(2));
    let metrics = Arc::new(Metrics::new());
    let mut cfg = config();
    cfg.instance = Some(identity.into());
    cfg.watch_namespaces = watch.iter().map(|s| (*s).to_owned()).collect();
    let ctx = atfleet_operator::controller::Context::new(
        client.clone(),
        cfg,
        Some(directory),
        metrics.clone(),
    );
    let elector = LeaderElector::new(
        client.clone(),
        LeaseConfig {
            namespace: SYSTEM_NS.into(),
            name: "atfleet-operator-leader".into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(3),
            renew_interval: Duration::from_millis(500),
        },
    );
    let stop = CancellationToken::new();
    let task = tokio::spawn(atfleet_operator::operator::run(
        ctx.clone(),
        Some(elector),
        Arc::new(AtomicBool::new(false)),
        stop.clone(),
    ));
    Replica {
        ctx,
        metrics,
        stop,
        task,
    }
}

async fn install_foreign_crds(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (group, plural, kind, version) in [
        ("cert-manager.io", "certificates", "Certificate", "v1"),
        (
            "gateway.networking.k8s.io",
            "tlsroutes",
            "TLSRoute",
            "v1alpha2",
        ),
    ] {
        let crd: CustomResourceDefinition = serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": { "name": format!("{plural}.{group}") },
            "spec": { "group": group, "scope": "Namespaced",
                "names": { "plural": plural, "singular": kind.to_lowercase(), "kind": kind },
                "versions": [{ "name": version, "served": true, "storage": true,
                    "schema": { "openAPIV3Schema": { "type": "object", "properties": {
                        "spec": { "type": "object", "x-kubernetes-preserve-unknown-fields": true },
                        "status": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } } } } }] }
        }))
        .expect("crd");
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("foreign CRD installs");
    }
}

async fn phase(atsigns: &Api<Atsign>, name: &str) -> Option<Phase> {
    atsigns.get_opt(name).await.ok()??.status?.phase
}

/// Runs the lifecycle and returns the operator's requests.
async fn scenario(watch: &[&str]) -> Vec<AuditEvent> {
    let (sim, client) = kubesim().await;
    install_foreign_crds(&client).await;
    let dir = directory(client.clone()).await;
    let op_client = operator_client(&sim);
    let a = replica(&op_client, &dir, "replica-a", watch);
    eventually("replica-a leads", || async { a.is_leader() }).await;
    let b = replica(&op_client, &dir, "replica-b", watch);
    let kubelet = CancellationToken::new();
    readiness_kubelet(client.clone(), kubelet.clone());
    let atsigns: Api<Atsign> = Api::namespaced(client.clone(), NS);
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), NS);

    // Create: built-in CA, a class naming a cert-manager issuer, a TLSRoute.
    let class: AtServerClass = serde_json::from_value(json!({
        "apiVersion": "atfleet.dev/v1alpha1", "kind": "AtServerClass",
        "metadata": { "name": "issued" },
        "spec": { "tls": { "issuerRef": { "name": "acme" } } },
    }))
    .expect("class");
    Api::<AtServerClass>::all(client.clone())
        .create(&PostParams::default(), &class)
        .await
        .expect("create class");
    create_atsign(
        &client,
        "alice",
        json!({ "storage": { "retention": "Delete" } }),
    )
    .await;
    create_atsign(&client, "lena", json!({ "className": "issued" })).await;
    create_atsign(
        &client,
        "nina",
        json!({ "exposure": { "mode": "TLSRoute", "domain": "atsign.example.com", "port": 443,
                              "gateway": { "name": "fleet", "namespace": "gateways" } } }),
    )
    .await;
    wait_condition(&client, "alice", "Ready", "True").await;
    wait_condition(&client, "nina", "Ready", "True").await;
    eventually("lena's Certificate", || async {
        let certs: Api<kube::api::DynamicObject> = Api::namespaced_with(
            client.clone(),
            NS,
            &atfleet_operator::build::certificate_api_resource(),
        );
        certs.get_opt("lena").await.ok().flatten().is_some()
    })
    .await;

    // Update: a new pod template.
    let patch = json!({ "spec": { "resources": { "limits": { "memory": "300Mi" } } } });
    atsigns
        .patch("alice", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("update");
    eventually("the new pod template", || async {
        statefulsets.get("alice").await.is_ok_and(|s| {
            serde_json::to_value(&s.spec).is_ok_and(|v| {
                v["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "300Mi"
            })
        })
    })
    .await;

    // Suspend.
    let patch = json!({ "spec": { "suspend": true } });
    atsigns
        .patch("alice", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("suspend");
    eventually("alice suspended", || async {
        phase(&atsigns, "alice").await == Some(Phase::Suspended)
    })
    .await;

    // Leader hand-over: the standby takes the lease.
    a.stop().await;
    eventually("replica-b leads", || async { b.is_leader() }).await;

    // Resume under the new leader, then delete (Delete retention: volume and Secrets go too).
    let patch = json!({ "spec": { "suspend": false } });
    atsigns
        .patch("alice", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("resume");
    eventually("alice Ready again", || async {
        phase(&atsigns, "alice").await == Some(Phase::Ready)
    })
    .await;
    atsigns
        .delete("alice", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("alice gone", || async {
        atsigns.get_opt("alice").await.is_ok_and(|a| a.is_none())
    })
    .await;

    b.stop().await;
    kubelet.cancel();
    let events: Vec<AuditEvent> = sim
        .audit()
        .events()
        .into_iter()
        .filter(|e| e.user_agent == USER_AGENT)
        .collect();
    sim.shutdown().await;
    events
}

/// Checks one mode: the scenario's requests against the rendered rules, and the rules against the
/// documented list.
async fn check(watch: &[&str], set: &[&str]) {
    let rendered = grants(&render_rbac(set));
    let expected = documented(watch);
    let extra: Vec<_> = rendered.difference(&expected).collect();
    let missing: Vec<_> = expected.difference(&rendered).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "the chart's RBAC differs from the documented grants\n  granted but not documented: {extra:?}\n  documented but not granted: {missing:?}"
    );

    let events = scenario(watch).await;
    assert!(events.len() > 50, "the operator's requests were audited");
    let denied: BTreeSet<String> = events
        .iter()
        .filter(|e| !e.resource.is_empty() && !allowed(&rendered, e))
        .map(|e| {
            format!(
                "{} {}/{} ns={:?} name={:?}",
                e.verb,
                e.group,
                resource_of(e),
                e.namespace,
                e.name
            )
        })
        .collect();
    assert!(
        denied.is_empty(),
        "requests the chart's RBAC would deny:\n  {}",
        denied.into_iter().collect::<Vec<_>>().join("\n  ")
    );
    // Only resource requests: no discovery or other non-resource paths are needed.
    let non_resource: Vec<_> = events
        .iter()
        .filter(|e| e.resource.is_empty())
        .map(|e| &e.path)
        .collect();
    assert!(
        non_resource.is_empty(),
        "non-resource requests: {non_resource:?}"
    );

    // Nothing granted sits unused: every documented grant was exercised, bar the named exceptions.
    let used: BTreeSet<(String, String, String)> = events
        .iter()
        .map(|e| (e.group.clone(), resource_of(e), e.verb.clone()))
        .collect();
    let unused: BTreeSet<(String, String, String)> = expected
        .iter()
        .map(|(_, g, r, v, _)| (g.clone(), r.clone(), v.clone()))
        .filter(|k| !used.contains(k))
        .collect();
    let exempt: BTreeSet<(String, String, String)> = NOT_EXERCISED
        .iter()
        .map(|(g, r, v)| ((*g).to_owned(), (*r).to_owned(), (*v).to_owned()))
        .collect();
    let unexplained: Vec<_> = unused.difference(&exempt).collect();
    assert!(
        unexplained.is_empty(),
        "grants the operator never used in the scenario (remove them, or exercise them): {unexplained:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_wide_rbac_allows_every_request_and_nothing_more() {
    check(&[], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaced_rbac_allows_every_request_and_nothing_more() {
    check(&[NS], &["operator.watchNamespaces={fleet}"]).await;
}
