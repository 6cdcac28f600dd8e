//! Acceptance run (issue 14, acceptance 3), ignored by default for its size: a fleet of
//! `ATFLEET_FLEET_SIZE` (100) Atsigns on the real control plane (pods simulated by the node
//! agent) renews every certificate without a single pod replaced or restarted, then completes a
//! rotation of the built-in CA. Prints the figures. Whether that rotation fails a
//! server-to-server handshake needs real atServers: `tests/ca_rotation_fleet.rs`.
//!
//!   scripts/with-controlplane -- cargo nextest run -p atfleet-operator --test fleet_renewal \
//!     --run-ignored ignored-only --no-capture

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use atfleet_operator::tls::{inspect, BuiltInCa};
use common::*;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::ByteString;
use kube::api::{ListParams, Patch, PatchParams};
use kube::Api;
use serde_json::json;

async fn pod_uids(client: &kube::Client) -> BTreeMap<String, (String, i32)> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns());
    pods.list(&ListParams::default())
        .await
        .expect("pods")
        .items
        .into_iter()
        .filter_map(|p| {
            let restarts = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .map(|c| c.iter().map(|c| c.restart_count).sum())
                .unwrap_or(0);
            Some((p.metadata.name?, (p.metadata.uid?, restarts)))
        })
        .collect()
}

async fn all_ready(client: &kube::Client, names: &[String]) -> bool {
    for name in names {
        if condition(client, name, "Ready")
            .await
            .map(|c| c.0)
            .as_deref()
            != Some("True")
        {
            return false;
        }
    }
    true
}

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
    let before = pod_uids(&client).await;

    // Age every certificate past its renewal point.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns());
    let ca_secret = Api::<Secret>::namespaced(client.clone(), system_ns())
        .get("atfleet-ca")
        .await
        .expect("CA");
    let ca = BuiltInCa::from_pem(
        &secret_text(&ca_secret, "ca.crt").unwrap_or_default(),
        &secret_text(&ca_secret, "ca.key").unwrap_or_default(),
    )
    .expect("CA");
    let now = Timestamp::now();
    let renewing = Instant::now();
    for name in &names {
        let tls = secrets.get(&format!("{name}-tls")).await.expect("tls");
        let host = inspect(secret_text(&tls, "tls.crt").unwrap_or_default().as_bytes())
            .expect("cert")
            .names[0]
            .clone();
        let aged = ca
            .issue(
                &host,
                now - SignedDuration::from_hours(10),
                SignedDuration::from_hours(10) + SignedDuration::from_mins(10),
            )
            .expect("leaf");
        let patch = json!({ "data": {
            "tls.crt": ByteString(aged.cert_pem.into_bytes()),
            "tls.key": ByteString(aged.key_pem.into_bytes()),
        } });
        secrets
            .patch(
                &format!("{name}-tls"),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .expect("age");
    }
    atfleet_test_support::wait::eventually(
        "every certificate renewed",
        Duration::from_secs(600),
        || async {
            let list = secrets.list(&ListParams::default()).await.expect("secrets");
            let renewed = list
                .items
                .iter()
                .filter(|s| {
                    s.metadata
                        .name
                        .as_deref()
                        .is_some_and(|n| n.ends_with("-tls"))
                })
                .filter(|s| {
                    inspect(secret_text(s, "tls.crt").unwrap_or_default().as_bytes())
                        .is_ok_and(|c| c.not_after > now + SignedDuration::from_hours(24))
                })
                .count();
            renewed == size
        },
    )
    .await;
    println!(
        "{size} certificates renewed in {:.1} s",
        renewing.elapsed().as_secs_f64()
    );
    let after = pod_uids(&client).await;
    let replaced = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(*v))
        .count();
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
