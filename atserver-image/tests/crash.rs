//! Crash safety: every update acknowledged with `data:<commitId>` survives SIGKILL.
//! Iterations: `ATSERVER_CRASH_ITERATIONS` (default 3).

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atfleet_test_support::pki::Leaf;
use atfleet_test_support::process::{start_atserver, AtServerArgs};
use common::{Client, Pki, SECRET};
use rand::Rng;
use tokio::process::Child;

/// Starts the binary on ephemeral ports and returns it with its TLS address.
async fn spawn(dir: &Path, pki: &Pki) -> (Child, std::net::SocketAddr) {
    let cram_secret_file = dir.join("cram.secret");
    std::fs::write(&cram_secret_file, SECRET).unwrap();
    let args = AtServerArgs {
        atsign: "@alice".into(),
        host: "127.0.0.1".into(),
        data_dir: dir.join("data"),
        tls: Leaf {
            cert: pki.cert_path.clone(),
            key: pki.key_path.clone(),
        },
        cram_secret_file,
        ca_bundle: None,
        root_server: None,
    };
    let started = start_atserver(args.command(env!("CARGO_BIN_EXE_atserver").as_ref())).await;
    (started.child, started.tls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_updates_survive_sigkill() {
    let iterations: usize = std::env::var("ATSERVER_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path().to_path_buf());
    let mut all_acked: Vec<(String, String)> = Vec::new();
    let mut rng = rand::thread_rng();
    for round in 0..iterations {
        let (mut child, addr) = spawn(tmp.path(), &pki).await;
        let mut c = Client::connect(addr, &pki).await;
        c.cram(SECRET).await;
        let acked = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let acked = acked.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let (key, value) = (
                        format!("k{round}x{i}.crash@alice"),
                        format!("value-{round}-{i}"),
                    );
                    match c.try_send(&format!("update:{key} {value}")).await {
                        Some(r) if r.starts_with("data:") => {
                            acked.lock().unwrap().push((key, value))
                        }
                        _ => return,
                    }
                }
            })
        };
        // Wait for the stream to be flowing (a loaded machine may be slow), then kill at a
        // random moment.
        for _ in 0..1200 {
            if !acked.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let delay = rng.gen_range(0..500);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        writer.await.unwrap();
        let acked = std::mem::take(&mut *acked.lock().unwrap());
        assert!(
            !acked.is_empty(),
            "round {round}: no update was acknowledged before the kill"
        );
        all_acked.extend(acked);

        // Restart on the same data and check every acknowledged write so far.
        let (mut child, addr) = spawn(tmp.path(), &pki).await;
        let mut c = Client::connect(addr, &pki).await;
        c.cram(SECRET).await;
        for (key, value) in &all_acked {
            assert_eq!(
                c.send(&format!("llookup:{key}")).await,
                format!("data:{value}"),
                "round {round}: {key} lost"
            );
        }
        eprintln!(
            "round {round}: {} acknowledged updates verified after SIGKILL",
            all_acked.len()
        );
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }
}
