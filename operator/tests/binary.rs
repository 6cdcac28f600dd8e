//! The `atfleet-operator` binary: flags, fail-fast configuration errors, and its HTTP endpoints
//! while running against the real control plane (as the chart's ServiceAccount, through the
//! test's proxy).

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use atfleet_test_support::http::get_raw as http_get;
use atfleet_test_support::net::{free_port, free_ports};
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_atfleet-operator");

#[test]
fn help_lists_the_fixed_flags() {
    let out = std::process::Command::new(BIN)
        .arg("--help")
        .output()
        .expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--directory-url",
        "--directory-token-file",
        "--watch-namespace",
        "--http-listen",
        "--leader-election",
        "--log-format",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn a_bad_setting_fails_fast_naming_it() {
    let out = std::process::Command::new(BIN)
        .args(["--directory-token-file", "/nonexistent/token"])
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--directory-token-file"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_health_readiness_and_metrics_then_stops_on_sigterm() {
    let (sim, _client) = cluster().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let kubeconfig = tmp.path().join("kubeconfig");
    sim.faults()
        .write_kubeconfig(&kubeconfig)
        .expect("kubeconfig");
    // A free port for the HTTP endpoints.
    let port = free_port();
    let mut child = spawn_operator(&kubeconfig, port, &["--log-format", "json"]);
    eventually("/readyz", || async {
        http_get(port, "/readyz")
            .await
            .is_some_and(|r| r.starts_with("HTTP/1.0 200"))
    })
    .await;
    assert!(http_get(port, "/healthz")
        .await
        .is_some_and(|r| r.starts_with("HTTP/1.0 200")));
    eventually("leadership in /metrics", || async {
        http_get(port, "/metrics")
            .await
            .is_some_and(|m| m.lines().any(|l| l == "atfleet_operator_leader 1"))
    })
    .await;
    let metrics = http_get(port, "/metrics").await.expect("metrics");
    for name in [
        "atfleet_operator_reconcile_duration_seconds",
        "atfleet_operator_reconciles_in_flight",
        "atfleet_operator_atsigns{phase=\"Ready\"}",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }
    // SIGTERM: graceful stop, lease released.
    let pid = child.id().expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stops")
        .expect("exit status");
    assert!(exit.success(), "{exit:?}");
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(sim.admin.clone(), system_ns());
    let lease = leases.get("atfleet-operator-leader").await.expect("lease");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity),
        None,
        "released on shutdown"
    );
    sim.shutdown().await;
}

/// The operator against `kubeconfig`, serving HTTP on `port`, in leader election, with `extra` flags.
fn spawn_operator(kubeconfig: &Path, port: u16, extra: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(BIN)
        .env("KUBECONFIG", kubeconfig)
        .args([
            "--http-listen",
            &format!("127.0.0.1:{port}"),
            "--namespace",
            system_ns(),
            "--watch-namespace",
            ns(),
            "--leader-election",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starts")
}

fn spawn_replica(kubeconfig: &Path, port: u16, identity: &str) -> tokio::process::Child {
    let flags = [
        "--lease-seconds",
        "3",
        "--identity",
        identity,
        "--resync-seconds",
        "10",
    ];
    spawn_operator(kubeconfig, port, &flags)
}

async fn leads(port: u16) -> bool {
    http_get(port, "/metrics")
        .await
        .is_some_and(|m| m.lines().any(|l| l == "atfleet_operator_leader 1"))
}

/// Two operator processes: one leads; `kill -9` of the leader (no lease release) hands over
/// once the lease expires, and the new leader reconciles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_process_hands_over() {
    let (sim, client) = cluster().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let kubeconfig = tmp.path().join("kubeconfig");
    sim.faults()
        .write_kubeconfig(&kubeconfig)
        .expect("kubeconfig");
    let (pa, pb) = free_ports();
    let mut a = spawn_replica(&kubeconfig, pa, "replica-a");
    eventually("a leads", || leads(pa)).await;
    let mut b = spawn_replica(&kubeconfig, pb, "replica-b");
    eventually("b is up", || async {
        http_get(pb, "/readyz")
            .await
            .is_some_and(|r| r.starts_with("HTTP/1.0 200"))
    })
    .await;
    assert!(!leads(pb).await, "only one replica leads");

    a.start_kill().expect("kill -9");
    let _ = a.wait().await;
    eventually("b leads", || leads(pb)).await;
    create_atsign(&client, "olga", serde_json::json!({})).await;
    wait_condition(&client, "olga", "Ready", "True").await;

    let _ = b.start_kill();
    let _ = b.wait().await;
    sim.shutdown().await;
}
