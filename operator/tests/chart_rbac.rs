//! The Helm chart's RBAC equals the documented grant list below, in both modes: a new permission
//! has to be added here, on purpose, with its reason.
//!
//! Whether those grants are enough is the real apiserver's answer, not this file's: every
//! controller test runs the operator as the chart's ServiceAccount under exactly these rendered
//! rules and fails on any 403 (`common::teardown`), and `real_apiserver.rs` shows a dropped
//! grant refused and reported on the Atsign.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// The chart is rendered as release `atfleet` in this namespace (where the Lease and CA live).
const RELEASE: &str = "atfleet";
const SERVICE_ACCOUNT: &str = "atfleet-operator";
const SYSTEM_NS: &str = "atfleet-system";
const NS: &str = "fleet";

/// One permission: (scope, apiGroup, resource[/subresource], verb, resourceName). Scope is
/// `cluster` for a ClusterRoleBinding, else the namespace of the RoleBinding.
type Grant = (String, String, String, String, String);

/// What the operator may do in each namespace it manages, and why.
const PER_NAMESPACE: &[(&str, &str, &[&str])] = &[
    // The watched resource; the finalizer is added and removed with JSON patches.
    ("atfleet.dev", "atsigns", &["list", "watch", "patch"]),
    ("atfleet.dev", "atsigns/status", &["patch"]),
    // Owned children: watched, server-side applied (an apply that creates is authorized as
    // `create`, one that changes as `patch`); the StatefulSet is deleted first on retire.
    (
        "apps",
        "statefulsets",
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    ("", "services", &["get", "list", "watch", "create", "patch"]),
    // CRAM and TLS Secrets: watched by label, applied, deleted under the Delete retention policy.
    (
        "",
        "secrets",
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    (
        "",
        "persistentvolumeclaims",
        &["get", "create", "patch", "delete"],
    ),
    // The finalizer waits until the atServer's pod is gone; a pod stuck on a broken revision
    // is read and deleted (controller/rollout.rs).
    ("", "pods", &["get", "list", "delete"]),
    // Optional children, applied while the spec wants them and deleted once it no longer does:
    // the trust bundle of a cert-manager Atsign, its Certificate, a TLSRoute.
    ("", "configmaps", &["get", "create", "patch", "delete"]),
    (
        "cert-manager.io",
        "certificates",
        &["get", "create", "patch", "delete"],
    ),
    (
        "gateway.networking.k8s.io",
        "tlsroutes",
        &["get", "create", "patch", "delete"],
    ),
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
    // The built-in CA's rotation patches it (controller/ca_rotation.rs).
    ("", "secrets", &["get", "patch"], "atfleet-ca"),
    ("", "secrets", &["create"], ""),
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
    // The chart's default class, which the operator applies at start (server-side apply that
    // creates it: create too), by name only.
    add(
        "cluster",
        "atfleet.dev",
        "atserverclasses",
        &["create", "patch"],
        "standard",
    );
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

#[test]
fn cluster_wide_rbac_is_the_documented_list() {
    assert_eq!(grants(&render_rbac(&[])), documented(&[]));
}

#[test]
fn namespaced_rbac_is_the_documented_list() {
    let set = format!("operator.watchNamespaces={{{NS}}}");
    assert_eq!(grants(&render_rbac(&[&set])), documented(&[NS]));
}
