//! Issue 14, acceptance 3, with REAL atServers: the node agent runs each Atsign's pod as an
//! `atserver` process on the real control plane. Every certificate is aged past its renewal
//! point (as `fleet_renewal.rs` does); the operator renews it by rewriting the TLS Secret; the
//! node agent refreshes the running pod's Secret volume (the kubelet's `..data` swap); the
//! atServer reloads the leaf (it checks its files every 30 s). Then every atServer must serve,
//! over TLS, exactly the leaf its Secret holds (the same DER: serial and notAfter included), with
//! no pod replaced or restarted (uids and restart counts unchanged).
//!
//! The short run is part of `make test`; the acceptance run (`ATFLEET_FLEET_SIZE`, default 100)
//! is ignored by default:
//!
//!   scripts/with-postgres -- scripts/with-controlplane -- cargo nextest run -p atfleet-operator \
//!     --test renewal_served --run-ignored ignored-only --no-capture

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atfleet_operator::tls::inspect;
use common::fleet::Fleet;
use common::renewal::{
    age_certificates, all_ready, pod_restarts, renewed_count, replaced_or_restarted,
};
use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;

/// The atServer's certificate reload period (`tls_reload_interval`, not a flag): the longest a
/// refreshed file may wait to be served.
const RELOAD: Duration = Duration::from_secs(30);

/// The leaf (first certificate) of a `-tls` Secret, DER.
fn secret_leaf(secret: &Secret) -> Option<Vec<u8>> {
    let pem = secret_text(secret, "tls.crt")?;
    let cert = CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()?
        .ok()?;
    Some(cert.to_vec())
}

/// The leaf the server at `host:port` presents in a TLS handshake verified against `ca_pem`.
async fn served_leaf(host: &str, port: u16, ca_pem: &str) -> Result<Vec<u8>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
    let handshake = async {
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        tls.get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .ok_or_else(|| "no peer certificate".to_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), handshake)
        .await
        .map_err(|_| "handshake timed out".to_owned())?
}

/// Which of `names` serve the leaf their Secret holds now.
async fn serving_their_secret(
    fleet: &Fleet,
    names: &[String],
    endpoints: &BTreeMap<String, (String, u16)>,
) -> Vec<String> {
    let secrets: Api<Secret> = Api::namespaced(fleet.client.clone(), ns());
    let Ok(ca) = Api::<Secret>::namespaced(fleet.client.clone(), system_ns())
        .get("atfleet-ca")
        .await
    else {
        return Vec::new();
    };
    let ca_pem = secret_text(&ca, "ca.crt").unwrap_or_default();
    let mut serving = Vec::new();
    for name in names {
        let Ok(secret) = secrets.get(&format!("{name}-tls")).await else {
            continue;
        };
        let (host, port) = &endpoints[name];
        if let (Some(want), Ok(got)) = (
            secret_leaf(&secret),
            served_leaf(host, *port, &ca_pem).await,
        ) {
            if want == got {
                serving.push(name.clone());
            }
        }
    }
    serving
}

async fn renew_and_serve(size: usize, patience: Duration) {
    let fleet = Fleet::start().await;
    let client = fleet.client.clone();
    let names: Vec<String> = (0..size).map(|i| format!("rs{i:03}")).collect();
    let started = Instant::now();
    for name in &names {
        create_atsign(&client, name, Fleet::spec(json!({}))).await;
    }
    atfleet_test_support::wait::eventually("the fleet Ready", patience, || {
        all_ready(&client, &names)
    })
    .await;
    let ready_after = started.elapsed();
    println!(
        "{size} real atServers Ready in {:.1} s",
        ready_after.as_secs_f64()
    );
    let mut endpoints = BTreeMap::new();
    for name in &names {
        let ep = atfleet_test_support::wait::until("status.endpoint", patience, || async {
            fleet.endpoint(name).await.ok_or("none yet".to_owned())
        })
        .await;
        endpoints.insert(name.clone(), ep);
    }
    atfleet_test_support::wait::eventually(
        "every atServer serving its first leaf",
        patience,
        || async { serving_their_secret(&fleet, &names, &endpoints).await.len() == size },
    )
    .await;
    let before = pod_restarts(&client).await;
    assert_eq!(before.len(), size);

    let renewing = Instant::now();
    let aged = age_certificates(&client, &names).await;
    atfleet_test_support::wait::eventually("every certificate renewed", patience, || async {
        renewed_count(&client, aged).await == size
    })
    .await;
    let renewed_after = renewing.elapsed();
    println!(
        "{size} certificates renewed (Secrets rewritten by the operator) {:.1} s after aging",
        renewed_after.as_secs_f64()
    );

    // Each atServer is checked until it serves its Secret's renewed leaf; the time it took is
    // noted, from the end of the renewal.
    let mut waiting: Vec<String> = names.clone();
    let mut serves_after: Vec<Duration> = Vec::new();
    let deadline = Instant::now() + RELOAD + patience;
    while !waiting.is_empty() {
        assert!(
            Instant::now() < deadline,
            "not serving their renewed leaf after {:?}: {waiting:?}",
            RELOAD + patience
        );
        let serving = serving_their_secret(&fleet, &waiting, &endpoints).await;
        let at = renewing.elapsed().saturating_sub(renewed_after);
        serves_after.extend(serving.iter().map(|_| at));
        waiting.retain(|n| !serving.contains(n));
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    serves_after.sort();
    let all_served = renewing.elapsed();
    let after = pod_restarts(&client).await;
    let replaced = replaced_or_restarted(&before, &after);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns());
    let sample = secrets
        .get(&format!("{}-tls", names[0]))
        .await
        .expect("tls");
    let leaf = inspect(
        secret_text(&sample, "tls.crt")
            .unwrap_or_default()
            .as_bytes(),
    )
    .expect("leaf");
    println!(
        "every atServer serves its renewed leaf (e.g. {}: notAfter {}) {:.1} s after aging, \
         {:.1} s after the last Secret was renewed (per atServer after the renewal: median \
         {:.1} s, max {:.1} s; the atServer reloads every {} s)",
        names[0],
        leaf.not_after,
        all_served.as_secs_f64(),
        (all_served - renewed_after).as_secs_f64(),
        serves_after[serves_after.len() / 2].as_secs_f64(),
        serves_after[serves_after.len() - 1].as_secs_f64(),
        RELOAD.as_secs()
    );
    println!("pods replaced or restarted by the renewal: {replaced} of {size}");
    assert_eq!(
        replaced, 0,
        "pods replaced or restarted: {before:?} → {after:?}"
    );
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_leaves_are_served_by_real_atservers_without_a_restart() {
    renew_and_serve(4, Duration::from_secs(90)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "acceptance run: 100 real atServers, minutes"]
async fn a_fleet_of_real_atservers_serves_renewed_leaves_without_a_restart() {
    let size: usize = std::env::var("ATFLEET_FLEET_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    renew_and_serve(size, Duration::from_secs(900)).await;
}
