//! `atctl onboard --from-secret namespace/name`: the CRAM secret read through a kubeconfig from the
//! Secret the operator writes (key `cramSecret`), served by the real apiserver of the shared
//! control plane.

mod common;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::{Fleet, Kube};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboard_reads_the_cram_secret_from_kubernetes() {
    let mut fleet = Fleet::start().await;
    let alice = fleet.server("@alice").await;
    let kube = Kube::start().await;
    let ns = kube.namespace.clone();
    kube.create(
        &format!("/api/v1/namespaces/{ns}/secrets"),
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "alice-cram"},
            "data": {"cramSecret": B64.encode(&alice.secret)},
        }),
    )
    .await;
    let atctl = fleet.atctl("keys");

    let out = atctl
        .command(&[
            "onboard",
            "@alice",
            "--from-secret",
            &format!("{ns}/missing"),
        ])
        .env("KUBECONFIG", &kube.kubeconfig)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(!atctl.keys_file("@alice").exists());

    let out = atctl
        .command(&[
            "--json",
            "onboard",
            "@alice",
            "--from-secret",
            &format!("{ns}/alice-cram"),
        ])
        .env("KUBECONFIG", &kube.kubeconfig)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["atsign"], "@alice");
    atctl.run(&["auth", "check"]).await.ok();
}
