//! Certificate renewal on the real control plane (the upstream StatefulSet controller; the node
//! agent reports the pods Ready without running them): a renewed certificate reaches the TLS
//! Secret, which the atServer reloads in place, and no pod is replaced or restarted.

mod common;

use atfleet_operator::crd::Atsign;
use atfleet_operator::tls::{inspect, BuiltInCa, CertInfo};
use common::*;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::ByteString;
use kube::api::{Patch, PatchParams};
use kube::Api;
use serde_json::json;

fn field(secret: &Secret, key: &str) -> Vec<u8> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .unwrap_or_default()
}

fn served(secret: &Secret) -> Option<CertInfo> {
    inspect(&field(secret, "tls.crt")).ok()
}

/// What a pod restart or replacement would change.
#[derive(Debug, PartialEq)]
struct PodIdentity {
    uid: Option<String>,
    restarts: i32,
    revision: Option<String>,
    sts_generation: Option<i64>,
    current_revision: Option<String>,
}

async fn identity(client: &kube::Client, name: &str) -> PodIdentity {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns());
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), ns());
    let pod = pods.get(&format!("{name}-0")).await.expect("pod");
    let sts = statefulsets.get(name).await.expect("sts");
    PodIdentity {
        uid: pod.metadata.uid.clone(),
        restarts: pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map(|c| c.iter().map(|c| c.restart_count).sum())
            .unwrap_or(0),
        revision: pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("controller-revision-hash").cloned()),
        sts_generation: sts.metadata.generation,
        current_revision: sts.status.and_then(|s| s.current_revision),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_rolls_no_pod() {
    let (sim, client) = cluster().await;
    let (_dir, op) = operated(&client).await;
    create_atsign(&client, "rena", json!({})).await;
    wait_condition(&client, "rena", "Ready", "True").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns());
    eventually("rena's pod", || async {
        pods.get_opt("rena-0").await.ok().flatten().is_some()
    })
    .await;
    let before = identity(&client, "rena").await;

    // Age the certificate: one from the operator's CA for the same host, past this Atsign's
    // renewal point (at most 75 % of its life) and ten minutes short of expiry.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns());
    let tls = secrets.get("rena-tls").await.expect("tls secret");
    let host = served(&tls).expect("served").names[0].clone();
    let ca_secret = Api::<Secret>::namespaced(client.clone(), system_ns())
        .get("atfleet-ca")
        .await
        .expect("CA secret");
    let text = |k: &str| String::from_utf8(field(&ca_secret, k)).expect("utf-8");
    let ca = BuiltInCa::from_pem(&text("ca.crt"), &text("ca.key")).expect("CA");
    let now = Timestamp::now();
    let aged = ca
        .issue(
            &host,
            now - SignedDuration::from_hours(10),
            SignedDuration::from_hours(10) + SignedDuration::from_mins(10),
        )
        .expect("aged leaf");
    let patch = json!({ "data": {
        "tls.crt": ByteString(aged.cert_pem.into_bytes()),
        "tls.key": ByteString(aged.key_pem.into_bytes()),
    } });
    secrets
        .patch("rena-tls", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("age the certificate");

    // The operator renews it, then writes the status naming the new expiry (after it applied
    // everything else, the StatefulSet included).
    let atsigns: Api<Atsign> = Api::namespaced(client.clone(), ns());
    eventually("the renewed certificate in rena's status", || async {
        let renewed = secrets
            .get("rena-tls")
            .await
            .ok()
            .and_then(|s| served(&s))
            .filter(|c| c.not_after > now + SignedDuration::from_hours(24));
        let status = atsigns
            .get("rena")
            .await
            .ok()
            .and_then(|a| a.status?.certificate?.not_after);
        renewed.is_some_and(|c| status == Some(c.not_after.to_string()))
    })
    .await;
    wait_condition(&client, "rena", "Ready", "True").await;

    assert_eq!(
        identity(&client, "rena").await,
        before,
        "the renewal replaced or restarted the pod, or moved the StatefulSet"
    );
    teardown(sim, op).await;
}
