//! Acceptance run (issue 14, acceptance 3), ignored by default for its size: a fleet of
//! `ATFLEET_FLEET_SIZE` (100) Atsigns on the real control plane (pods simulated by the node
//! agent) renews every certificate without a single pod replaced or restarted, then completes a
//! rotation of the built-in CA. Prints the figures. That real atServers then serve the renewed
//! leaves, still without a restart: `tests/renewal_served.rs`; whether the rotation fails a
//! server-to-server handshake: `tests/ca_rotation_fleet.rs`.
//!
//!   scripts/with-controlplane -- cargo nextest run -p atfleet-operator --test fleet_renewal \
//!     --run-ignored ignored-only --no-capture

mod common;

use std::time::{Duration, Instant};

use common::renewal::{
    age_certificates, all_ready, pod_restarts, renewed_count, replaced_or_restarted,
};
use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;
use kube::Api;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "acceptance run: 100 Atsigns, minutes"]
async fn a_fleet_renews_without_restarts_and_rotates_its_ca() {
    let size: usize = std::env::var("ATFLEET_FLEET_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let (sim, client) = cluster().await;
    let (_dir, op) = operated(&client).await;
    let names: Vec<String> = (0..size).map(|i| format!("f{i:03}")).collect();
    let started = Instant::now();
    for name in &names {
        create_atsign(&client, name, json!({})).await;
    }
    atfleet_test_support::wait::eventually("the fleet Ready", Duration::from_secs(600), || {
        all_ready(&client, &names)
    })
    .await;
    println!(
        "{size} Atsigns Ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let before = pod_restarts(&client).await;

    // Age every certificate past its renewal point.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns());
    let renewing = Instant::now();
    let aged = age_certificates(&client, &names).await;
    atfleet_test_support::wait::eventually(
        "every certificate renewed",
        Duration::from_secs(600),
        || async { renewed_count(&client, aged).await == size },
    )
    .await;
    println!(
        "{size} certificates renewed in {:.1} s",
        renewing.elapsed().as_secs_f64()
    );
    let replaced = replaced_or_restarted(&before, &pod_restarts(&client).await);
    println!("pods replaced or restarted by the renewal: {replaced}");
    assert_eq!(replaced, 0);

    // Rotate the built-in CA.
    let cas: Api<Secret> = Api::namespaced(client.clone(), system_ns());
    let old = secret_text(&cas.get("atfleet-ca").await.expect("CA"), "ca.crt").unwrap_or_default();
    request_ca_rotation(&client).await;
    let rotating = Instant::now();
    atfleet_test_support::wait::eventually(
        "the rotation completes",
        Duration::from_secs(1200),
        || async {
            let ca = cas.get("atfleet-ca").await.expect("CA");
            let current = secret_text(&ca, "ca.crt").unwrap_or_default();
            if current == old
                || !secret_text(&ca, "previous.crt")
                    .unwrap_or_default()
                    .is_empty()
                || !secret_text(&ca, "next.crt").unwrap_or_default().is_empty()
            {
                return false;
            }
            let list = secrets.list(&ListParams::default()).await.expect("secrets");
            list.items
                .iter()
                .filter(|s| {
                    s.metadata
                        .name
                        .as_deref()
                        .is_some_and(|n| n.ends_with("-tls"))
                })
                .all(|s| {
                    secret_text(s, "ca.crt").unwrap_or_default() == current
                        && !secret_text(s, "trust-bundle.crt")
                            .unwrap_or_default()
                            .contains(old.trim())
                })
        },
    )
    .await;
    println!(
        "built-in CA rotated across {size} Atsigns in {:.1} s",
        rotating.elapsed().as_secs_f64()
    );
    atfleet_test_support::wait::eventually(
        "the fleet Ready after the rotation",
        Duration::from_secs(600),
        || all_ready(&client, &names),
    )
    .await;
    teardown(sim, op).await;
}
