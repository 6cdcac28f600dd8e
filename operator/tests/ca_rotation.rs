//! Rotation of the built-in CA on the real control plane (the upstream StatefulSet controller
//! rolls the pods; the node agent reports them Ready without running them): asked for with an
//! annotation on the CA Secret, it ends with every leaf issued by the new CA and the old one
//! trusted nowhere, and at no moment is a leaf of the new CA served while some pod runs on a
//! bundle that lacks it.

mod common;

use std::time::Duration;

use atfleet_cluster::FaultConfig;
use atfleet_operator::build::trust_checksum;
use common::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;
use kube::Api;
use serde_json::json;

const NAMES: [&str; 3] = ["rota", "rotb", "rotc"];

/// One Atsign's leaf CA, trust bundle, and whether its pod runs on that bundle.
struct Seen {
    name: &'static str,
    leaf_ca: String,
    trust: String,
    running_on_trust: bool,
}

async fn fleet(client: &kube::Client) -> Vec<Seen> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns());
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), ns());
    let all = statefulsets
        .list(&ListParams::default())
        .await
        .expect("statefulsets")
        .items;
    let mut out = Vec::new();
    for name in NAMES {
        let Ok(secret) = secrets.get(&format!("{name}-tls")).await else {
            continue;
        };
        let (Some(leaf_ca), Some(trust)) = (
            secret_text(&secret, "ca.crt"),
            secret_text(&secret, "trust-bundle.crt"),
        ) else {
            continue;
        };
        let sts = all
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name));
        let running_on_trust = sts.is_some_and(|s| {
            let checksum = s
                .spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.annotations.as_ref())
                .and_then(|a| a.get("atfleet.dev/trust-checksum"));
            let settled = s.status.as_ref().is_some_and(|st| {
                st.observed_generation >= s.metadata.generation
                    && st.updated_replicas.unwrap_or(0) >= 1
            });
            checksum == Some(&trust_checksum(&trust)) && settled
        });
        out.push(Seen {
            name,
            leaf_ca,
            trust,
            running_on_trust,
        });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_rotation_trusts_the_new_ca_everywhere_before_it_issues() {
    let (sim, client) = cluster().await;
    let (_dir, op) = operated(&client).await;
    for name in NAMES {
        create_atsign(&client, name, json!({})).await;
    }
    for name in NAMES {
        wait_condition(&client, name, "Ready", "True").await;
    }
    let cas: Api<Secret> = Api::namespaced(client.clone(), system_ns());
    let old = secret_text(&cas.get("atfleet-ca").await.expect("CA"), "ca.crt").expect("ca.crt");

    request_ca_rotation(&client).await;

    // The bundle each pod was last seen running on (a rolling pod runs on the one before).
    let running: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<&str, String>>> =
        Default::default();
    let mut checks = 0;
    atfleet_test_support::wait::eventually(
        "the rotation completes",
        Duration::from_secs(240),
        || {
            let (client, cas, old, running) =
                (client.clone(), cas.clone(), old.clone(), running.clone());
            checks += 1;
            async move {
                let ca = cas.get("atfleet-ca").await.expect("CA");
                let current = secret_text(&ca, "ca.crt").unwrap_or_default();
                let seen = fleet(&client).await;
                let mut running = running.lock().expect("lock");
                for s in seen.iter().filter(|s| s.running_on_trust) {
                    running.insert(s.name, s.trust.clone());
                }
                // The invariant: once any leaf of a new CA is served, every pod runs on a
                // bundle that trusts it.
                for leaf in seen.iter().filter(|s| s.leaf_ca != old) {
                    for name in NAMES {
                        let trust = running.get(name).map(String::as_str).unwrap_or_default();
                        assert!(
                            trust.contains(leaf.leaf_ca.trim()),
                            "{}'s leaf from the new CA is served while {name}'s pod runs on a \
                             bundle without that CA",
                            leaf.name
                        );
                    }
                }
                current != old
                    && secret_text(&ca, "next.crt").is_none()
                    && secret_text(&ca, "previous.crt").is_none()
                    && seen.len() == NAMES.len()
                    && seen.iter().all(|s| {
                        s.leaf_ca == current
                            && !s.trust.contains(old.trim())
                            && s.trust.contains(current.trim())
                            && s.running_on_trust
                    })
            }
        },
    )
    .await;
    assert!(checks > 1);
    for name in NAMES {
        wait_condition(&client, name, "Ready", "True").await;
    }
    let metrics = op.metrics.encode();
    for step in ["Begin", "Promote", "Retire"] {
        assert!(
            metrics.contains(&format!(
                "atfleet_operator_ca_rotation_steps_total{{step=\"{step}\"}} 1"
            )),
            "{metrics}"
        );
    }
    teardown(sim, op).await;
}

/// The trust-bundle checksum of `name`'s pod template.
async fn template_checksum(client: &kube::Client, name: &str) -> Option<String> {
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), ns());
    statefulsets
        .get_opt(name)
        .await
        .expect("statefulset")?
        .spec
        .template
        .metadata?
        .annotations?
        .remove("atfleet.dev/trust-checksum")
}

/// The rotation judges "this pod runs on the new bundle" by the pod template's checksum, so the
/// template may only name a bundle the TLS Secret really holds. While the Secret cannot be
/// written, the changed bundle of a rotation's first move must not reach the StatefulSet; once
/// it can, both move together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_names_only_a_bundle_its_secret_holds() {
    let (sim, client) = cluster().await;
    let (_dir, op) = operated(&client).await;
    create_atsign(&client, "tina", json!({})).await;
    wait_condition(&client, "tina", "Ready", "True").await;
    let before = template_checksum(&client, "tina").await.expect("checksum");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns());
    let stored = || async {
        let secret = secrets.get("tina-tls").await.expect("tina-tls");
        secret_text(&secret, "trust-bundle.crt").expect("trust-bundle.crt")
    };
    assert_eq!(before, trust_checksum(&stored().await));

    sim.faults().set(FaultConfig {
        error_rate: 1.0,
        only_paths_containing: Some("/secrets/tina-tls".into()),
        ..FaultConfig::default()
    });
    let _cas: Api<Secret> = Api::namespaced(client.clone(), system_ns());
    request_ca_rotation(&client).await;
    let refused = format!("applying the Secret {}/tina-tls", ns());
    eventually("the refused TLS Secret reported on tina", || async {
        let atsigns: Api<atfleet_operator::crd::Atsign> = Api::namespaced(client.clone(), ns());
        let status = atsigns.get("tina").await.expect("tina").status;
        status.is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Degraded" && c.status == "True" && c.message.contains(&refused)
            })
        })
    })
    .await;
    assert_eq!(
        template_checksum(&client, "tina").await.as_deref(),
        Some(before.as_str()),
        "the template moved to a bundle its Secret does not hold"
    );
    assert_eq!(before, trust_checksum(&stored().await));

    sim.faults().set(FaultConfig::default());
    eventually("the Secret and the template on the new bundle", || async {
        let trust = stored().await;
        let now = template_checksum(&client, "tina").await;
        now.as_deref() == Some(trust_checksum(&trust).as_str()) && now.as_deref() != Some(&before)
    })
    .await;
    teardown(sim, op).await;
}
