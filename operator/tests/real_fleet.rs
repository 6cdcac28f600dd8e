//! The controller against the real control plane with the node agent running REAL atserver processes and the
//! REAL atDirectory on Postgres: what a user sees is checked through the root protocol and the
//! atServer's own TLS greeting, not through the objects alone.
//!
//! Needs `DATABASE_URL` (`scripts/with-postgres -- cargo test -p atfleet-operator`) and the
//! `atserver` binary in the target directory (`cargo build -p atserver`).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use atfleet_cluster::FaultConfig;
use atfleet_operator::crd::{Atsign, Phase};
use common::fleet::{alive, pid, until, within, Fleet};
use common::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::Api;
use serde_json::json;

const SELECTOR: &str = "app.kubernetes.io/managed-by=atfleet-operator";

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn is(fleet: &Fleet, name: &str, type_: &str, status: &str) -> bool {
    condition(&fleet.client, name, type_)
        .await
        .is_some_and(|(s, _)| s == status)
}

/// Waits until `name` is Ready and Registered, the directory answers its published endpoint and
/// an atServer there greets over TLS with the operator's CA; returns that endpoint.
async fn serving(fleet: &Fleet, name: &str) -> (String, u16) {
    within(&format!("{name} Ready and Registered"), || async {
        is(fleet, name, "Ready", "True").await && is(fleet, name, "Registered", "True").await
    })
    .await;
    let endpoint = fleet.endpoint(name).await.expect("status.endpoint");
    assert_eq!(endpoint.0, "127.0.0.1", "published on the node address");
    let at = format!("@{name}");
    assert_eq!(
        fleet.directory.lookup(&at).await,
        Some(endpoint.clone()),
        "the directory answers the published address"
    );
    // The forwarder follows the ready pod: a just-rolled pod may take a moment to take over.
    until(
        &format!("{name}'s atServer greeting at {endpoint:?}"),
        || fleet.greet(&endpoint.0, endpoint.1),
    )
    .await;
    endpoint
}

/// The pid of `<name>-0`'s atserver once it runs and is Ready.
async fn running_pid(fleet: &Fleet, name: &str, not: Option<i32>) -> i32 {
    until(&format!("{name}-0 running a new process"), || async {
        fleet
            .pod(name)
            .await
            .filter(pod_ready)
            .and_then(|p| pid(&p))
            .filter(|p| Some(*p) != not && alive(*p))
            .ok_or_else(|| "no ready pod with a new live process".to_owned())
    })
    .await
}

async fn patch_spec(fleet: &Fleet, name: &str, spec: serde_json::Value) {
    fleet
        .atsigns()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "spec": spec })),
        )
        .await
        .expect("patch Atsign");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_atserver_is_created_rolled_suspended_and_retired_in_order() {
    let fleet = Fleet::start().await;
    create_atsign(&fleet.client, "alice", Fleet::spec(json!({}))).await;
    let endpoint = serving(&fleet, "alice").await;
    let first = running_pid(&fleet, "alice", None).await;

    // Changing resources rolls the pod: a new atserver process replaces the old one.
    patch_spec(
        &fleet,
        "alice",
        json!({ "resources": { "limits": { "memory": "300Mi" } } }),
    )
    .await;
    let second = running_pid(&fleet, "alice", Some(first)).await;
    within("the old atserver process to exit", || async {
        !alive(first)
    })
    .await;
    assert_eq!(serving(&fleet, "alice").await, endpoint);

    // Suspend: zero replicas, no process, reported suspended, withdrawn from the directory.
    patch_spec(&fleet, "alice", json!({ "suspend": true })).await;
    within("alice Suspended", || async {
        let a = fleet.atsigns().get("alice").await.expect("alice");
        a.status.and_then(|s| s.phase) == Some(Phase::Suspended)
    })
    .await;
    let statefulsets: Api<StatefulSet> = Api::namespaced(fleet.client.clone(), ns());
    assert_eq!(
        statefulsets.get("alice").await.expect("sts").spec.replicas,
        Some(0)
    );
    within("the pod and its process to go", || async {
        fleet.pod("alice").await.is_none() && !alive(second)
    })
    .await;
    assert_eq!(
        condition(&fleet.client, "alice", "Ready").await,
        Some(("False".into(), "Suspended".into()))
    );
    assert_eq!(fleet.directory.lookup("@alice").await, None);

    // Resume, then delete while watching that the directory forgets it before the pod goes.
    patch_spec(&fleet, "alice", json!({ "suspend": false })).await;
    assert_eq!(serving(&fleet, "alice").await, endpoint);
    let last = running_pid(&fleet, "alice", Some(second)).await;
    let violation = Arc::new(AtomicBool::new(false));
    let withdrawn_while_running = Arc::new(AtomicUsize::new(0));
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (client, port, pem) = (
            fleet.client.clone(),
            fleet.directory.root_port,
            fleet.directory.cert_pem.clone(),
        );
        let (violation, early, stop) = (
            violation.clone(),
            withdrawn_while_running.clone(),
            stop_sampling.clone(),
        );
        tokio::spawn(async move {
            let pods: Api<Pod> = Api::namespaced(client, ns());
            let tls = at_protocol::client::TlsOptions::from_ca_pem(pem.as_bytes()).expect("trust");
            let root = at_protocol::client::RootClient::new(
                at_protocol::client::ClientConfig::new(tls).expect("config"),
                "localhost",
                port,
            );
            let at = at_protocol::AtSign::parse("@alice").expect("atSign");
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                // Pod first, then the directory: a record seen after the pod was seen gone was
                // still there when the pod went.
                let pod_there = pods.get_opt("alice-0").await.ok().flatten().is_some();
                let running = pod_there && alive(last);
                let Ok(registered) = root.lookup(&at).await.map(|r| r.is_some()) else {
                    continue;
                };
                if !running && registered {
                    violation.store(true, Ordering::SeqCst);
                }
                if running && !registered {
                    early.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    fleet
        .atsigns()
        .delete("alice", &DeleteParams::default())
        .await
        .expect("delete");
    within("alice gone", || async {
        fleet
            .atsigns()
            .get_opt("alice")
            .await
            .expect("get")
            .is_none()
    })
    .await;
    within("the last process to exit", || async { !alive(last) }).await;
    stop_sampling.store(true, Ordering::SeqCst);
    sampler.await.expect("sampler");
    assert!(
        !violation.load(Ordering::SeqCst),
        "the directory still answered for @alice after its pod had gone"
    );
    println!(
        "samples with the pod running and @alice already withdrawn: {}",
        withdrawn_while_running.load(Ordering::SeqCst)
    );
    assert_eq!(fleet.directory.lookup("@alice").await, None);
    assert!(fleet.pod("alice").await.is_none());
    assert!(statefulsets.get_opt("alice").await.expect("get").is_none());
    // Retain (the default) keeps the volume and the CRAM secret.
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(fleet.client.clone(), ns());
    let secrets: Api<Secret> = Api::namespaced(fleet.client.clone(), ns());
    assert!(pvcs.get_opt("alice-data").await.expect("get").is_some());
    assert!(secrets.get_opt("alice-cram").await.expect("get").is_some());

    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_outage_is_reported_and_recovered_and_delete_policy_removes_data() {
    let mut fleet = Fleet::start().await;
    // The directory is down when bob's atServer comes up: it serves, but cannot be registered,
    // and the Atsign says why. (A settled registration is not withdrawn by an outage: the record
    // survives in the directory's database, so the operator keeps its belief until a check
    // answers.)
    fleet.directory.stop().await;
    create_atsign(
        &fleet.client,
        "bob",
        Fleet::spec(json!({ "storage": { "size": "64Mi", "retention": "Delete" } })),
    )
    .await;
    within("Registered=False DirectoryUnavailable", || async {
        condition(&fleet.client, "bob", "Registered").await
            == Some(("False".into(), "DirectoryUnavailable".into()))
    })
    .await;
    assert!(is(&fleet, "bob", "Ready", "False").await);
    assert!(is(&fleet, "bob", "Degraded", "True").await);
    running_pid(&fleet, "bob", None).await;
    let (host, port) = until("bob's endpoint", || async {
        fleet.endpoint("bob").await.ok_or("none yet".to_owned())
    })
    .await;
    until("bob's atServer greeting during the outage", || {
        fleet.greet(&host, port)
    })
    .await;

    // It returns: bob is registered and resolvable.
    fleet.directory.restart().await;
    assert_eq!(serving(&fleet, "bob").await, (host, port));
    assert!(is(&fleet, "bob", "Degraded", "False").await);

    // Delete while the directory is down: the finalizer cannot deregister, so the pod must keep
    // running; once the directory returns, bob is deregistered and only then stopped.
    let last = running_pid(&fleet, "bob", None).await;
    fleet.directory.stop().await;
    fleet
        .atsigns()
        .delete("bob", &DeleteParams::default())
        .await
        .expect("delete");
    let op = fleet.operator.as_ref().expect("operator");
    within("a failed deregistration attempt", || async {
        op.metrics.encode().lines().any(|l| {
            l.starts_with("atfleet_operator_directory_calls_total")
                && l.contains("operation=\"deregister\"")
                && l.contains("result=\"DirectoryUnavailable\"")
        })
    })
    .await;
    let statefulsets: Api<StatefulSet> = Api::namespaced(fleet.client.clone(), ns());
    assert!(
        statefulsets.get_opt("bob").await.expect("get").is_some(),
        "the StatefulSet stays while the directory cannot be told"
    );
    assert!(fleet.pod("bob").await.is_some() && alive(last));
    fleet.directory.restart().await;
    within("bob gone", || async {
        fleet.atsigns().get_opt("bob").await.expect("get").is_none()
    })
    .await;
    within("bob's process to exit", || async { !alive(last) }).await;
    assert_eq!(fleet.directory.lookup("@bob").await, None);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(fleet.client.clone(), ns());
    let secrets: Api<Secret> = Api::namespaced(fleet.client.clone(), ns());
    within("bob's volume and secrets deleted", || async {
        pvcs.get_opt("bob-data").await.expect("get").is_none()
            && secrets.get_opt("bob-cram").await.expect("get").is_none()
            && secrets.get_opt("bob-tls").await.expect("get").is_none()
    })
    .await;

    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_api_faults_converge_to_serving_atservers_without_duplicates() {
    let fleet = Fleet::start().await;
    fleet.sim.faults().set(FaultConfig {
        error_rate: 0.2,
        conflict_rate: 0.15,
        ..FaultConfig::default()
    });
    let names = ["carol", "dave"];
    for name in names {
        // Creating may itself hit a fault: retry as a user would.
        within(&format!("{name} created"), || async {
            let api: Api<Atsign> = fleet.atsigns();
            if api.get_opt(name).await.ok().flatten().is_some() {
                return true;
            }
            let mut spec = Fleet::spec(json!({}));
            spec["atSign"] = json!(format!("@{name}"));
            let obj: Atsign = serde_json::from_value(json!({
                "apiVersion": "atfleet.dev/v1alpha1", "kind": "Atsign",
                "metadata": { "name": name, "namespace": ns() },
                "spec": spec,
            }))
            .expect("atsign");
            let _ = api.create(&Default::default(), &obj).await;
            false
        })
        .await;
    }
    for name in names {
        within(&format!("{name} Ready under faults"), || async {
            is(&fleet, name, "Ready", "True").await
        })
        .await;
    }
    fleet.sim.faults().set(FaultConfig::default());
    let mut endpoints = Vec::new();
    for name in names {
        endpoints.push(serving(&fleet, name).await);
    }
    assert_ne!(endpoints[0], endpoints[1], "one node port each");

    let lp = ListParams::default().labels(SELECTOR);
    let sts: Api<StatefulSet> = Api::namespaced(fleet.client.clone(), ns());
    let svcs: Api<Service> = Api::namespaced(fleet.client.clone(), ns());
    let secrets: Api<Secret> = Api::namespaced(fleet.client.clone(), ns());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(fleet.client.clone(), ns());
    let pods: Api<Pod> = Api::namespaced(fleet.client.clone(), ns());
    assert_eq!(sts.list(&lp).await.expect("list").items.len(), names.len());
    assert_eq!(svcs.list(&lp).await.expect("list").items.len(), names.len());
    assert_eq!(pvcs.list(&lp).await.expect("list").items.len(), names.len());
    assert_eq!(
        secrets.list(&lp).await.expect("list").items.len(),
        names.len() * 2
    );
    let all_pods = pods.list(&ListParams::default()).await.expect("list").items;
    assert_eq!(all_pods.len(), names.len(), "one pod per Atsign");
    let pids: std::collections::HashSet<_> = all_pods.iter().filter_map(pid).collect();
    assert_eq!(pids.len(), names.len(), "one atserver process per Atsign");
    let op = fleet.operator.as_ref().expect("operator");
    assert!(
        op.metrics
            .encode()
            .contains("atfleet_operator_reconcile_errors_total{reason="),
        "faults were seen"
    );

    fleet.shutdown().await;
}
