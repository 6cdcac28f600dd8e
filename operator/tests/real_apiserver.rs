//! What only the real apiserver decides: RBAC for the operator's ServiceAccount as the chart
//! renders it, admission of Atsign names by the CRD's CEL rules, and the CRDs themselves.

mod common;

use atfleet_operator::crd::Atsign;
use common::*;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{ListParams, PostParams};
use kube::Api;
use serde_json::json;

/// A cluster whose operator may not `create` `resource`, and the Atsign `name` once the refusal
/// shows on it as `Degraded=True` with reason `Forbidden` (that condition is returned, with the
/// directory and the operator replica, which must outlive the test).
async fn refused_create(
    resource: &str,
    name: &str,
) -> (TestCluster, kube::Client, Directory, Replica, Condition) {
    let (cluster, client) = cluster_with(Setup {
        rbac: RbacEdit {
            drop_verb: Some((resource, "create")),
        },
        ..Setup::default()
    })
    .await;
    let (dir, op) = operated(&client).await;
    create_atsign(&client, name, json!({})).await;
    eventually("Degraded=True Forbidden", || async {
        condition(&client, name, "Degraded").await == Some(("True".into(), "Forbidden".into()))
    })
    .await;
    let atsigns: Api<Atsign> = Api::namespaced(client.clone(), ns());
    let status = atsigns.get(name).await.expect(name).status.expect("status");
    let degraded = status
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Degraded")
        .expect("Degraded");
    (cluster, client, dir, op, degraded)
}

/// Without `create` on StatefulSets the first apply of an Atsign's StatefulSet is refused; the
/// operator says so on the Atsign (Degraded=True, reason Forbidden) and in a Warning Event, not
/// only in its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_grant_is_refused_and_reported_on_the_atsign() {
    let (cluster, client, _dir, op, degraded) = refused_create("statefulsets", "rita").await;
    assert!(
        degraded.message.contains("statefulsets") && degraded.message.contains("forbidden"),
        "the message names what was refused: {}",
        degraded.message
    );
    let events: Api<Event> = Api::namespaced(client.clone(), ns());
    eventually("a Warning Event Forbidden on rita", || async {
        events.list(&ListParams::default()).await.is_ok_and(|l| {
            l.items.iter().any(|e| {
                e.reason.as_deref() == Some("Forbidden")
                    && e.type_.as_deref() == Some("Warning")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("rita")
            })
        })
    })
    .await;
    let refused = cluster.forbidden();
    assert!(
        refused
            .iter()
            .any(|l| l.method == "PATCH" && l.uri.contains("/statefulsets/rita")),
        "the apiserver refused the StatefulSet apply: {refused:?}"
    );
    op.stop().await;
    cluster.shutdown().await;
}

/// Children are applied each on its own: a refused Service (no `create` grant) does not hold up
/// the CRAM Secret and the data volume's claim, and the failure is reported as the Apply step's,
/// naming the child, on the Atsign and in the outcome metric.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_child_does_not_hold_up_the_others() {
    let (cluster, client, _dir, op, degraded) = refused_create("services", "ulla").await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns());
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns());
    eventually(
        "the claim and the CRAM Secret applied despite the Service",
        || async {
            claims.get_opt("ulla-data").await.ok().flatten().is_some()
                && secrets.get_opt("ulla-cram").await.ok().flatten().is_some()
        },
    )
    .await;
    assert!(
        degraded
            .message
            .contains(&format!("applying the Service {}/ulla", ns())),
        "the message names the refused child: {}",
        degraded.message
    );
    let outcome = op
        .metrics
        .encode()
        .lines()
        .find(|l| {
            l.starts_with("atfleet_operator_reconcile_outcomes_total{")
                && l.contains(r#"step="Apply""#)
                && l.contains(r#"reason="Forbidden""#)
        })
        .map(str::to_owned);
    assert!(
        outcome.is_some(),
        "the outcome metric counts the Apply step's refusal:\n{}",
        op.metrics.encode()
    );
    op.stop().await;
    cluster.shutdown().await;
}

/// The full grant list is enough for a whole lifecycle: the first apply of every child creates
/// it, and server-side apply that creates is authorized as `create`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_grants_suffice_for_create_ready_and_delete() {
    let (cluster, client) = cluster().await;
    let (dir, op) = operated(&client).await;
    create_atsign(&client, "sam", json!({})).await;
    wait_condition(&client, "sam", "Ready", "True").await;
    assert!(dir.record("@sam").is_some());
    let atsigns: Api<Atsign> = Api::namespaced(client.clone(), ns());
    atsigns
        .delete("sam", &Default::default())
        .await
        .expect("delete");
    eventually("sam gone", || async {
        atsigns.get_opt("sam").await.ok().flatten().is_none()
    })
    .await;
    assert!(dir.record("@sam").is_none());
    teardown(cluster, op).await;
}

/// Names that would make an invalid StatefulSet or Service, or a revision label over 63
/// characters, are refused at admission, with the rule in the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atsign_names_that_are_not_short_dns_labels_are_refused_at_admission() {
    let (cluster, client) = cluster().await;
    let atsigns: Api<Atsign> = Api::namespaced(client.clone(), ns());
    let too_long = format!("a{}", "b".repeat(52));
    for name in ["a.b", "Upper", "1abc", "trailing-", too_long.as_str()] {
        let obj: Atsign = serde_json::from_value(json!({
            "apiVersion": "atfleet.dev/v1alpha1", "kind": "Atsign",
            "metadata": { "name": name, "namespace": ns() },
            "spec": { "atSign": "@valid" },
        }))
        .expect("atsign");
        let err = atsigns
            .create(&PostParams::default(), &obj)
            .await
            .expect_err(name);
        let message = err.to_string();
        // A name that is not even a DNS subdomain is refused by the apiserver's own name check;
        // the others reach the CRD's rule.
        assert!(
            message.contains("DNS-1035 label of at most 52 characters")
                || message.contains("RFC 1123 subdomain"),
            "{name}: {message}"
        );
    }
    let fifty_two = format!("a{}", "b".repeat(51));
    for name in ["ok-name", fifty_two.as_str()] {
        let obj: Atsign = serde_json::from_value(json!({
            "apiVersion": "atfleet.dev/v1alpha1", "kind": "Atsign",
            "metadata": { "name": name, "namespace": ns() },
            "spec": { "atSign": "@valid" },
        }))
        .expect("atsign");
        atsigns
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("{name} is a valid name: {e}"));
    }
    cluster.shutdown().await;
}

/// The CRDs pass the real apiserver's structural-schema and CEL cost checks (every test applies
/// them), and its table printer fills the READY column from the status the operator writes,
/// with one AGE column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_atsign_shows_ready_and_one_age_column() {
    let (cluster, client) = cluster().await;
    let (_dir, op) = operated(&client).await;
    create_atsign(&client, "tess", json!({})).await;
    wait_condition(&client, "tess", "Ready", "True").await;
    let request = http::Request::get(format!(
        "/apis/atfleet.dev/v1alpha1/namespaces/{}/atsigns",
        ns()
    ))
    .header(
        "accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )
    .body(Vec::new())
    .expect("request");
    let table: serde_json::Value = client.request(request).await.expect("table");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        columns
            .iter()
            .filter(|c| c.eq_ignore_ascii_case("age"))
            .count(),
        1,
        "{columns:?}"
    );
    let ready = columns
        .iter()
        .position(|c| c.eq_ignore_ascii_case("ready"))
        .expect("a Ready column");
    let row = &table["rows"][0]["cells"];
    assert_eq!(row[ready], "True", "{table}");
    teardown(cluster, op).await;
}

/// A holder whose wall clock is an hour behind keeps renewing: its `renewTime` always looks an
/// hour old, yet a standby with a correct clock does not take the lease while the renewals go
/// on, and does once they stop for the lease's duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_holder_clock_does_not_decide_leadership() {
    use atfleet_operator::leader::{LeaderElector, LeaseConfig};
    use k8s_openapi::api::coordination::v1::Lease;
    use std::time::Duration;
    let (cluster, client) = cluster().await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), system_ns());
    let skewed_now = || {
        k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1),
        )
    };
    let lease: Lease = serde_json::from_value(json!({
        "metadata": { "name": "skew", "namespace": system_ns() },
        "spec": { "holderIdentity": "behind", "leaseDurationSeconds": 2 },
    }))
    .expect("lease");
    leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("lease");
    let standby = LeaderElector::new(
        client.clone(),
        LeaseConfig {
            namespace: system_ns().into(),
            name: "skew".into(),
            identity: "standby".into(),
            lease_duration: Duration::from_secs(2),
            renew_interval: Duration::from_millis(200),
        },
    );
    // Six seconds (three lease durations) of renewals from the skewed holder, every 500 ms.
    for _ in 0..12 {
        let mut current = leases.get("skew").await.expect("lease");
        current.spec.as_mut().expect("spec").renew_time = Some(skewed_now());
        leases
            .replace("skew", &PostParams::default(), &current)
            .await
            .expect("renew");
        assert!(
            !standby.try_acquire_or_renew().await.expect("standby tries"),
            "the standby took a lease that was being renewed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The holder stops renewing: the standby takes over after a lease duration.
    eventually("the standby takes over", || async {
        standby.try_acquire_or_renew().await.unwrap_or(false)
    })
    .await;
    let held = leases.get("skew").await.expect("lease");
    assert_eq!(
        held.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("standby")
    );
    cluster.shutdown().await;
}

/// A volume change the apiserver refuses (a shrink) is reported as Degraded with an Event, and
/// does not hold up what comes after it: the status is still written for the new generation and
/// the atServer stays Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_volume_change_is_reported_and_blocks_nothing_else() {
    use kube::api::{Patch, PatchParams};
    let (cluster, client) = cluster().await;
    let (_dir, op) = operated(&client).await;
    create_atsign(&client, "vera", json!({ "storage": { "size": "64Mi" } })).await;
    wait_condition(&client, "vera", "Ready", "True").await;
    let atsigns: Api<Atsign> = Api::namespaced(client.clone(), ns());
    let patch = json!({ "spec": { "storage": { "size": "32Mi" } } });
    let changed = atsigns
        .patch("vera", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("shrink requested");
    eventually("Degraded=True VolumeChangeRefused", || async {
        condition(&client, "vera", "Degraded").await
            == Some(("True".into(), "VolumeChangeRefused".into()))
    })
    .await;
    let status = atsigns
        .get("vera")
        .await
        .expect("vera")
        .status
        .expect("status");
    assert_eq!(status.observed_generation, changed.metadata.generation);
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        "still serving: {:?}",
        status.conditions
    );
    let events: Api<Event> = Api::namespaced(client.clone(), ns());
    eventually("a VolumeChangeRefused Event", || async {
        events.list(&ListParams::default()).await.is_ok_and(|l| {
            l.items
                .iter()
                .any(|e| e.reason.as_deref() == Some("VolumeChangeRefused"))
        })
    })
    .await;
    teardown(cluster, op).await;
}
