//! Scale run: the operator binary, as its own process, takes N Atsigns (default 1,000) to Ready
//! on the real control plane (the shared one of `scripts/with-controlplane`), in a namespace whose
//! pods the node agent reports Ready without running them; then, with nothing changing, it must
//! make no writes for a minute. It runs as the chart's ServiceAccount under the rendered RBAC,
//! through the test's logging proxy, which counts its requests. Reports time, API requests per
//! Atsign and the operator's peak resident memory. Run with
//! `ATFLEET_NODE_AGENT_MAX_PODS=2000 scripts/with-controlplane -- cargo test -p atfleet-operator --test
//! scale -- --ignored --nocapture` (ATFLEET_SCALE_N=…; the shared node agent's pod capacity, which
//! it reads from ATFLEET_NODE_AGENT_MAX_PODS and is 110 by default, must exceed N).

mod common;

use std::time::{Duration, Instant};

use atfleet_operator::crd::Atsign;
use common::*;
use futures::StreamExt;
use kube::api::ListParams;
use kube::Api;
use serde_json::json;

fn ready_count(list: &[Atsign]) -> usize {
    list.iter()
        .filter(|a| {
            a.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
        })
        .count()
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale run; see the module docs"]
async fn atsigns_reach_ready_at_scale_and_then_stay_quiet() {
    let n: usize = std::env::var("ATFLEET_SCALE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let (tc, client) = cluster().await;
    let dir = directory(client.clone()).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    // The operator reaches the apiserver through the test's proxy (plain HTTP on loopback; the
    // proxy authenticates upstream with the operator's ServiceAccount token).
    let kubeconfig = tmp.path().join("kubeconfig");
    tc.proxy.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let token = tmp.path().join("token");
    std::fs::write(&token, TOKEN).expect("token");

    let mut operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_atfleet-operator"))
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "warn")
        .args(["--directory-url", &dir.url, "--directory-token-file"])
        .arg(&token)
        .args([
            "--http-listen",
            "127.0.0.1:0",
            "--namespace",
            system_ns(),
            "--watch-namespace",
            ns(),
            "--resync-seconds",
            "20",
        ])
        .kill_on_drop(true)
        .spawn()
        .expect("operator starts");
    let pid = operator.id().expect("pid");

    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            async move { create_atsign(&client, &format!("s{i:05}"), json!({})).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let created = started.elapsed();
    let atsigns: Api<Atsign> = Api::namespaced(client.clone(), ns());
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let list = atsigns
            .list(&ListParams::default())
            .await
            .expect("list")
            .items;
        if ready_count(&list) == n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} Ready",
            ready_count(&list)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let to_ready = started.elapsed();
    let log = tc.proxy.log();
    let requests = log.len();
    let writes = log.iter().filter(|l| l.is_write()).count();

    tc.proxy.clear_log();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let idle = tc.proxy.log();
    let idle_requests = idle.len();
    let idle_writes: Vec<_> = idle.iter().filter(|l| l.is_write()).collect();
    let rss = peak_rss_kib(pid);
    println!(
        "scale: {n} Atsigns created in {:.1}s, all Ready after {:.1}s; operator API requests {requests} \
         ({:.1}/Atsign, {:.1} writes/Atsign); idle minute: {idle_requests} requests, {} writes; \
         operator peak RSS {} MiB",
        created.as_secs_f64(),
        to_ready.as_secs_f64(),
        requests as f64 / n as f64,
        writes as f64 / n as f64,
        idle_writes.len(),
        rss.map(|k| format!("{:.1}", k as f64 / 1024.0)).unwrap_or_else(|| "?".into()),
    );
    assert!(
        idle_writes.is_empty(),
        "writes while nothing changed: {:?}",
        &idle_writes[..idle_writes.len().min(5)]
    );
    assert_eq!(dir.state.lock().expect("lock").records.len(), n);

    let _ = operator.start_kill();
    let _ = operator.wait().await;
    tc.shutdown().await;
}
