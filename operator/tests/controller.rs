//! The controller against the real control plane (upstream apiserver, StatefulSet controller,
//! scheduler; the node agent reports this test's pods Ready without running them) and a
//! registration-API directory. The operator runs as the chart's ServiceAccount under the RBAC
//! `helm template` renders, through a proxy that logs its requests and injects faults.

mod common;

use std::time::Duration;

use atfleet_cluster::FaultConfig;
use atfleet_operator::crd::{Atsign, Phase};
use atfleet_operator::tls::inspect;
use common::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::Api;
use serde_json::json;

const SELECTOR: &str = "app.kubernetes.io/managed-by=atfleet-operator";

fn owned_by_atsign(meta: &kube::api::ObjectMeta, atsign: &Atsign) -> bool {
    meta.owner_references.iter().flatten().any(|o| {
        o.kind == "Atsign"
            && Some(&o.uid) == atsign.metadata.uid.as_ref()
            && o.controller == Some(true)
    })
}

/// What the certificate in the atServer's TLS Secret (`<name>-tls`) says.
async fn served_certificate(client: &kube::Client, name: &str) -> atfleet_operator::tls::CertInfo {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns());
    let tls = secrets.get(&format!("{name}-tls")).await.expect("tls");
    let pem = &tls
        .data
        .as_ref()
        .and_then(|d| d.get("tls.crt"))
        .expect("crt")
        .0;
    inspect(pem).expect("cert")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_provisions_registers_and_settles_without_writes() {
    let (sim, client) = cluster().await;
    let dir = directory(client.clone()).await;
    let op = operator(Some(&dir), None);

    let alice = create_atsign(&client, "alice", json!({})).await;
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), ns());
    let services: Api<Service> = Api::namespaced(client.clone(), ns());
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns());
    eventually("the StatefulSet", || async {
        statefulsets.get_opt("alice").await.ok().flatten().is_some()
    })
    .await;

    // Children with owner references; retention-governed ones without.
    let sts = statefulsets.get("alice").await.expect("sts");
    assert!(owned_by_atsign(&sts.metadata, &alice));
    assert_eq!(sts.spec.replicas, Some(1));
    let svc = services.get("alice").await.expect("svc");
    assert!(owned_by_atsign(&svc.metadata, &alice));
    let pvc = pvcs.get("alice-data").await.expect("pvc");
    assert!(pvc.metadata.owner_references.is_none());
    let cram = secrets.get("alice-cram").await.expect("cram secret");
    let cram_value = cram
        .data
        .as_ref()
        .and_then(|d| d.get("cramSecret"))
        .expect("cram")
        .0
        .clone();
    assert_eq!(cram_value.len(), 128);
    let tls = secrets.get("alice-tls").await.expect("tls secret");
    let cert = inspect(
        &tls.data
            .as_ref()
            .and_then(|d| d.get("tls.crt"))
            .expect("tls.crt")
            .0,
    )
    .expect("certificate");
    assert_eq!(cert.names, [format!("alice.{}.svc.cluster.local", ns())]);
    let ca: Api<Secret> = Api::namespaced(client.clone(), system_ns());
    assert!(
        ca.get_opt("atfleet-ca").await.expect("get").is_some(),
        "the built-in CA Secret exists"
    );

    wait_condition(&client, "alice", "CertificateReady", "True").await;

    wait_condition(&client, "alice", "Ready", "True").await;
    assert_eq!(
        condition(&client, "alice", "Registered").await.map(|c| c.0),
        Some("True".into())
    );
    assert_eq!(
        dir.record("@alice"),
        Some((
            format!("alice.{}.svc.cluster.local", ns()),
            6464,
            format!("atfleet/{}/alice", ns())
        ))
    );
    let atsigns: Api<Atsign> = Api::namespaced(client.clone(), ns());
    let status = atsigns
        .get("alice")
        .await
        .expect("atsign")
        .status
        .expect("status");
    assert_eq!(status.phase, Some(Phase::Ready));
    assert_eq!(
        status.endpoint.as_deref(),
        Some(format!("alice.{}.svc.cluster.local:6464", ns()).as_str())
    );
    assert_eq!(
        status.observed_generation,
        atsigns.get("alice").await.expect("a").metadata.generation
    );
    assert!(status.certificate.and_then(|c| c.not_after).is_some());
    assert!(op
        .metrics
        .encode()
        .contains("atfleet_operator_atsigns{phase=\"Ready\"} 1"));

    // Settled: several resyncs pass with no writes from the operator.
    sim.faults().clear_log();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let writes: Vec<_> = sim
        .faults()
        .log()
        .into_iter()
        .filter(|l| l.is_write())
        .collect();
    assert!(
        writes.is_empty(),
        "writes while nothing changed: {writes:?}"
    );
    assert!(op.reconciles() > 1, "resyncs happened");

    // Scaling the StatefulSet by hand (two writers on one volume) is undone.
    let patch = json!({ "spec": { "replicas": 2 } });
    statefulsets
        .patch("alice", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("scale");
    eventually("replicas back to 1", || async {
        statefulsets.get("alice").await.expect("sts").spec.replicas == Some(1)
    })
    .await;

    teardown(sim, op).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_roll_the_pod_suspend_scales_to_zero_and_withdraws() {
    let (sim, client) = cluster().await;
    let (dir, op) = operated(&client).await;
    create_atsign(&client, "bob", json!({})).await;
    wait_condition(&client, "bob", "Ready", "True").await;

    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), ns());
    let before = statefulsets.get("bob").await.expect("sts");
    let atsigns: Api<Atsign> = Api::namespaced(client.clone(), ns());
    let patch = json!({ "spec": { "resources": { "limits": { "memory": "300Mi" } } } });
    atsigns
        .patch("bob", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch");
    eventually("the pod template to change", || async {
        let sts = statefulsets.get("bob").await.expect("sts");
        let limits = sts
            .spec
            .template
            .spec
            .as_ref()
            .and_then(|p| p.containers[0].resources.as_ref())
            .and_then(|r| r.limits.clone());
        limits.and_then(|l| l.get("memory").cloned()).map(|q| q.0) == Some("300Mi".into())
    })
    .await;
    let after = statefulsets.get("bob").await.expect("sts");
    assert!(
        after.metadata.generation > before.metadata.generation,
        "a new pod template revision rolls the pod"
    );
    wait_condition(&client, "bob", "Ready", "True").await;

    // Suspend: zero replicas, reported as suspended, withdrawn from the directory.
    let patch = json!({ "spec": { "suspend": true } });
    atsigns
        .patch("bob", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("suspend");
    eventually("suspended", || async {
        let a = atsigns.get("bob").await.expect("atsign");
        a.status.and_then(|s| s.phase) == Some(Phase::Suspended)
    })
    .await;
    assert_eq!(
        statefulsets.get("bob").await.expect("sts").spec.replicas,
        Some(0)
    );
    // Withdrawn once the real StatefulSet controller has removed the pod.
    eventually("withdrawn while suspended", || async {
        dir.record("@bob").is_none()
    })
    .await;
    assert_eq!(
        condition(&client, "bob", "Ready").await,
        Some(("False".into(), "Suspended".into()))
    );

    // Resume.
    let patch = json!({ "spec": { "suspend": false } });
    atsigns
        .patch("bob", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("resume");
    wait_condition(&client, "bob", "Ready", "True").await;
    assert_eq!(
        statefulsets.get("bob").await.expect("sts").spec.replicas,
        Some(1)
    );
    assert!(
        dir.record("@bob").is_some(),
        "re-registered on resume: {:?} {:?}",
        dir.ops(),
        atsigns.get("bob").await.expect("bob").status
    );

    teardown(sim, op).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_deregisters_first_then_keeps_or_deletes_data() {
    let (sim, client) = cluster().await;
    let (dir, op) = operated(&client).await;
    create_atsign(&client, "carol", json!({})).await;
    create_atsign(
        &client,
        "dave",
        json!({ "storage": { "retention": "Delete" } }),
    )
    .await;
    wait_condition(&client, "carol", "Ready", "True").await;
    wait_condition(&client, "dave", "Ready", "True").await;

    let atsigns: Api<Atsign> = Api::namespaced(client.clone(), ns());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns());
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns());
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), ns());
    for name in ["carol", "dave"] {
        atsigns
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }
    eventually("both Atsigns gone", || async {
        atsigns.get_opt("carol").await.expect("get").is_none()
            && atsigns.get_opt("dave").await.expect("get").is_none()
    })
    .await;

    for at in ["@carol", "@dave"] {
        let deletes: Vec<_> = dir
            .ops()
            .into_iter()
            .filter(|o| o.method == "DELETE" && o.atsign == at)
            .collect();
        assert!(!deletes.is_empty(), "{at} deregistered");
        assert_eq!(
            deletes[0].statefulset_present,
            Some(true),
            "{at}: deregistered while the pod still ran"
        );
        assert!(dir.record(at).is_none());
    }
    assert!(statefulsets.get_opt("carol").await.expect("get").is_none());
    // Retain (default) keeps the volume and the CRAM secret; Delete removes them.
    assert!(pvcs.get_opt("carol-data").await.expect("get").is_some());
    assert!(secrets.get_opt("carol-cram").await.expect("get").is_some());
    // The PVC protection controller lets the claim go once no pod uses it.
    eventually("dave's claim deleted", || async {
        pvcs.get_opt("dave-data").await.expect("get").is_none()
    })
    .await;
    assert!(secrets.get_opt("dave-cram").await.expect("get").is_none());
    assert!(secrets.get_opt("dave-tls").await.expect("get").is_none());

    // Recreating carol picks up the retained CRAM secret unchanged, and says that it inherits
    // the kept volume.
    let kept = secrets.get("carol-cram").await.expect("cram").data;
    create_atsign(&client, "carol", json!({})).await;
    wait_condition(&client, "carol", "Ready", "True").await;
    assert_eq!(secrets.get("carol-cram").await.expect("cram").data, kept);
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns());
    eventually("a VolumeInherited Event on carol", || async {
        events.list(&ListParams::default()).await.is_ok_and(|l| {
            l.items.iter().any(|e| {
                e.reason.as_deref() == Some("VolumeInherited")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("carol")
                    && e.note.as_deref().is_some_and(|n| n.contains("carol-data"))
            })
        })
    })
    .await;

    teardown(sim, op).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_outage_reports_not_registered_and_recovers() {
    let (sim, client) = cluster().await;
    let dir = directory(client.clone()).await;
    dir.set_down(true);
    let op = operator(Some(&dir), None);
    create_atsign(&client, "erin", json!({})).await;
    eventually("Registered=False DirectoryUnavailable", || async {
        condition(&client, "erin", "Registered").await
            == Some(("False".into(), "DirectoryUnavailable".into()))
    })
    .await;
    assert_eq!(
        condition(&client, "erin", "Degraded").await.map(|c| c.0),
        Some("True".into())
    );
    assert_eq!(
        condition(&client, "erin", "Ready").await.map(|c| c.0),
        Some("False".into())
    );

    dir.set_down(false);
    wait_condition(&client, "erin", "Ready", "True").await;
    assert_eq!(
        condition(&client, "erin", "Degraded").await.map(|c| c.0),
        Some("False".into())
    );
    assert!(dir.record("@erin").is_some());
    // The directory loses the record (restored from an old backup): the next resync puts it back.
    dir.state.lock().expect("lock").records.remove("@erin");
    eventually("re-registration after drift", || async {
        dir.record("@erin").is_some()
    })
    .await;
    assert!(op
        .metrics
        .encode()
        .contains("result=\"DirectoryUnavailable\""));

    teardown(sim, op).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_api_faults_converge_without_duplicates() {
    let (sim, client) = cluster().await;
    let dir = directory(client.clone()).await;
    sim.faults().set(FaultConfig {
        error_rate: 0.2,
        conflict_rate: 0.15,
        throttle_rate: 0.05,
        cut_watches_after: Some(Duration::from_secs(3)),
        ..FaultConfig::default()
    });
    let op = operator(Some(&dir), None);
    let names = ["f1", "f2", "f3", "f4", "f5"];
    for name in names {
        // Creating may itself hit a fault: retry like a user would.
        let api: Api<Atsign> = Api::namespaced(client.clone(), ns());
        eventually("create", || async {
            if api.get_opt(name).await.ok().flatten().is_some() {
                return true;
            }
            create_atsign_tolerant(&client, name).await;
            false
        })
        .await;
    }
    for name in names {
        wait_condition(&client, name, "Ready", "True").await;
    }
    sim.faults().set(FaultConfig::default());
    let lp = ListParams::default().labels(SELECTOR);
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), ns());
    let svcs: Api<Service> = Api::namespaced(client.clone(), ns());
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns());
    assert_eq!(sts.list(&lp).await.expect("list").items.len(), names.len());
    assert_eq!(svcs.list(&lp).await.expect("list").items.len(), names.len());
    assert_eq!(pvcs.list(&lp).await.expect("list").items.len(), names.len());
    assert_eq!(
        secrets.list(&lp).await.expect("list").items.len(),
        names.len() * 2
    );
    for name in names {
        assert!(dir.record(&format!("@{name}")).is_some());
    }
    assert!(
        op.metrics
            .encode()
            .contains("atfleet_operator_reconcile_errors_total{reason="),
        "faults were seen"
    );

    teardown(sim, op).await;
}

async fn create_atsign_tolerant(client: &kube::Client, name: &str) {
    let api: Api<Atsign> = Api::namespaced(client.clone(), ns());
    let obj: Atsign = serde_json::from_value(json!({
        "apiVersion": "atfleet.dev/v1alpha1", "kind": "Atsign",
        "metadata": { "name": name, "namespace": ns() },
        "spec": { "atSign": format!("@{name}") },
    }))
    .expect("atsign");
    let _ = api.create(&Default::default(), &obj).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_reconciles_and_killing_it_hands_over() {
    let (sim, client) = cluster().await;
    let dir = directory(client.clone()).await;
    let a = operator(Some(&dir), Some("replica-a"));
    eventually("replica-a leads", || async { a.is_leader() }).await;
    let b = operator(Some(&dir), Some("replica-b"));

    create_atsign(&client, "gina", json!({})).await;
    wait_condition(&client, "gina", "Ready", "True").await;
    assert!(a.reconciles() > 0);
    assert!(!b.is_leader());
    assert_eq!(b.reconciles(), 0, "the standby does not reconcile");

    // Kill the leader: the standby takes over and serves new Atsigns.
    a.stop().await;
    eventually("replica-b leads", || async { b.is_leader() }).await;
    create_atsign(&client, "hank", json!({})).await;
    wait_condition(&client, "hank", "Ready", "True").await;
    assert!(b.reconciles() > 0);
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), system_ns());
    let lease = leases.get("atfleet-operator-leader").await.expect("lease");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("replica-b")
    );

    b.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_change_reissues_without_a_roll_and_reregisters() {
    let (sim, client) = cluster().await;
    let (dir, op) = operated(&client).await;
    create_atsign(&client, "ivan", json!({ "storage": { "size": "1Gi" } })).await;
    wait_condition(&client, "ivan", "Ready", "True").await;
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), ns());
    let template = |s: StatefulSet| s.spec.template;
    let before = template(statefulsets.get("ivan").await.expect("sts"));

    // A new published host: a new certificate the atServer reloads in place (the pod does not
    // roll), a new registration.
    let atsigns: Api<Atsign> = Api::namespaced(client.clone(), ns());
    let patch = json!({ "spec": { "exposure": { "host": "ivan.example.net" }, "storage": { "size": "3Gi" } } });
    atsigns
        .patch("ivan", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch");
    eventually("re-registration at the new address", || async {
        dir.record("@ivan")
            .is_some_and(|r| r.0 == "ivan.example.net")
    })
    .await;
    wait_condition(&client, "ivan", "Ready", "True").await;
    let cert = served_certificate(&client, "ivan").await;
    assert_eq!(cert.names, ["ivan.example.net"]);
    assert_eq!(
        template(statefulsets.get("ivan").await.expect("sts")),
        before,
        "the atServer reloads the new certificate: the pod template stays"
    );
    // The volume grew online.
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns());
    let size = pvcs
        .get("ivan-data")
        .await
        .expect("pvc")
        .spec
        .and_then(|s| s.resources)
        .and_then(|r| r.requests)
        .and_then(|r| r.get("storage").cloned());
    assert_eq!(size.map(|q| q.0).as_deref(), Some("3Gi"));

    teardown(sim, op).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_port_publishes_the_allocated_port_and_classes_apply() {
    let (sim, client) = cluster().await;
    let (dir, op) = operated(&client).await;
    let classes: Api<atfleet_operator::crd::AtServerClass> = Api::all(client.clone());
    let class: atfleet_operator::crd::AtServerClass = serde_json::from_value(json!({
        "apiVersion": "atfleet.dev/v1alpha1", "kind": "AtServerClass",
        "metadata": { "name": "edge" },
        "spec": { "image": "registry.example/atserver:1", "exposure": { "mode": "NodePort", "host": "node1.example.net" } },
    }))
    .expect("class");
    classes
        .create(&Default::default(), &class)
        .await
        .expect("class");
    create_atsign(&client, "jill", json!({ "className": "edge" })).await;
    wait_condition(&client, "jill", "Ready", "True").await;
    let services: Api<Service> = Api::namespaced(client.clone(), ns());
    let svc = services.get("jill").await.expect("svc");
    let node_port = svc
        .spec
        .and_then(|s| s.ports)
        .and_then(|p| p[0].node_port)
        .expect("allocated node port");
    let record = dir.record("@jill").expect("registered");
    assert_eq!(
        (record.0.as_str(), i32::from(record.1)),
        ("node1.example.net", node_port)
    );

    // Changing the class re-reconciles its Atsigns.
    let patch = json!({ "spec": { "image": "registry.example/atserver:2" } });
    classes
        .patch("edge", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch class");
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), ns());
    eventually("the class image to reach the pod", || async {
        let sts = statefulsets.get("jill").await.expect("sts");
        sts.spec
            .template
            .spec
            .and_then(|p| p.containers[0].image.clone())
            .as_deref()
            == Some("registry.example/atserver:2")
    })
    .await;

    // A missing class is reported, not crashed on.
    create_atsign(&client, "kim", json!({ "className": "nope" })).await;
    eventually("ClassNotFound", || async {
        condition(&client, "kim", "Degraded").await == Some(("True".into(), "ClassNotFound".into()))
    })
    .await;

    teardown(sim, op).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_issuer_gets_a_cert_manager_certificate() {
    use kube::api::DynamicObject;
    let (sim, client) = cluster().await;
    install_open_crd(&client, "cert-manager.io", "v1", "Certificate", true).await;
    let (_dir, op) = operated(&client).await;
    create_atsign(
        &client,
        "lena",
        json!({ "tls": { "issuerRef": { "name": "acme" }, "durationHours": 900 } }),
    )
    .await;

    let certs: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns(),
        &atfleet_operator::build::certificate_api_resource(),
    );
    eventually("the Certificate", || async {
        certs.get_opt("lena").await.ok().flatten().is_some()
    })
    .await;
    let cert = certs.get("lena").await.expect("certificate");
    let spec = &cert.data["spec"];
    assert_eq!(
        spec["dnsNames"],
        json!([format!("lena.{}.svc.cluster.local", ns())])
    );
    assert_eq!(
        spec["issuerRef"],
        json!({ "name": "acme", "kind": "ClusterIssuer", "group": "cert-manager.io" })
    );
    // Renewed at lena's own point of the lifetime (60–75 %), not at the fleet's common one.
    let renew_before = atfleet_operator::tls::RenewalPoint::for_atsign(ns(), "lena")
        .renew_before(jiff::SignedDuration::from_hours(900));
    assert!((225 * 60..=360 * 60).contains(&renew_before.as_mins()));
    assert_eq!(
        (spec["duration"].as_str(), spec["renewBefore"].as_str()),
        (
            Some("900h"),
            Some(format!("{}m", renew_before.as_mins())).as_deref()
        )
    );
    assert!(spec["usages"]
        .as_array()
        .expect("usages")
        .contains(&json!("client auth")));
    eventually("CertificateReady=False Pending", || async {
        condition(&client, "lena", "CertificateReady").await
            == Some(("False".into(), "Pending".into()))
    })
    .await;
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), ns());
    assert!(
        statefulsets.get_opt("lena").await.expect("get").is_none(),
        "no pod before there is a certificate"
    );

    // Play cert-manager with an ACME issuer: write the Secret the Certificate asks for, with no
    // ca.crt (an ACME issuer writes none).
    let now = jiff::Timestamp::now();
    let ca = atfleet_operator::tls::BuiltInCa::generate(now).expect("ca");
    let leaf = ca
        .issue(
            &format!("lena.{}.svc.cluster.local", ns()),
            now,
            jiff::SignedDuration::from_hours(900),
        )
        .expect("leaf");
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": { "name": spec["secretName"], "namespace": ns(), "labels": spec["secretTemplate"]["labels"] },
        "stringData": { "tls.crt": leaf.cert_pem, "tls.key": leaf.key_pem },
    }))
    .expect("secret");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns());
    secrets
        .create(&Default::default(), &secret)
        .await
        .expect("secret");
    wait_condition(&client, "lena", "Ready", "True").await;
    let atsigns: Api<Atsign> = Api::namespaced(client.clone(), ns());
    let status = atsigns
        .get("lena")
        .await
        .expect("lena")
        .status
        .expect("status");
    assert_eq!(
        status.certificate.map(|c| c.source),
        Some("CertManager".into())
    );
    // The pod is not pointed at the ca.crt that does not exist; its trust bundle has its own
    // ConfigMap, owned by the Atsign.
    let sts = statefulsets.get("lena").await.expect("sts");
    let args = sts
        .spec
        .template
        .spec
        .and_then(|p| p.containers.into_iter().next())
        .and_then(|c| c.args)
        .unwrap_or_default();
    assert!(!args.iter().any(|a| a.ends_with("/ca.crt")), "{args:?}");
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), ns());
    let trust = config_maps
        .get("lena-trust")
        .await
        .expect("trust ConfigMap");
    assert!(owned_by_atsign(
        &trust.metadata,
        &atsigns.get("lena").await.expect("lena")
    ));

    teardown(sim, op).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balancer_and_tls_route_publish_the_reachable_address() {
    use kube::api::DynamicObject;
    let (sim, client) = cluster().await;
    install_tls_route_crd(&client).await;
    let (dir, op) = operated(&client).await;

    // LoadBalancer without a DNS name: the balancer's observed address is published.
    create_atsign(
        &client,
        "mona",
        json!({ "exposure": { "mode": "LoadBalancer", "port": 7000 } }),
    )
    .await;
    eventually("waiting for the balancer address", || async {
        condition(&client, "mona", "CertificateReady")
            .await
            .is_some_and(|c| c.1 == "WaitingForAddress")
    })
    .await;
    // Play the cloud controller.
    let services: Api<Service> = Api::namespaced(client.clone(), ns());
    let patch = json!({ "status": { "loadBalancer": { "ingress": [{ "ip": "203.0.113.7" }] } } });
    services
        .patch_status("mona", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("lb status");
    wait_condition(&client, "mona", "Ready", "True").await;
    assert_eq!(
        dir.record("@mona").map(|r| (r.0, r.1)),
        Some(("203.0.113.7".into(), 7000))
    );
    let cert = served_certificate(&client, "mona").await;
    assert_eq!(cert.names, ["203.0.113.7"]);

    // TLSRoute: a hostname under the fleet domain, routed by SNI through the shared Gateway.
    create_atsign(
        &client,
        "nina",
        json!({ "exposure": { "mode": "TLSRoute", "domain": "atsign.example.com", "port": 443,
                              "gateway": { "name": "fleet", "namespace": "gateways" } } }),
    )
    .await;
    wait_condition(&client, "nina", "Ready", "True").await;
    assert_eq!(
        dir.record("@nina").map(|r| (r.0, r.1)),
        Some((format!("nina.{}.atsign.example.com", ns()), 443))
    );
    let routes: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns(),
        &atfleet_operator::build::tls_route_api_resource(),
    );
    let route = routes.get("nina").await.expect("route");
    assert_eq!(
        route.data["spec"]["hostnames"],
        json!([format!("nina.{}.atsign.example.com", ns())])
    );
    assert_eq!(
        route.data["spec"]["rules"][0]["backendRefs"][0]["name"],
        json!("nina")
    );

    teardown(sim, op).await;
}

/// A stored Atsign the operator cannot even parse (possible after a schema change) is reported
/// with an Event and does not hold up the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_atsign_does_not_stall_the_others() {
    use k8s_openapi::api::events::v1::Event;
    use kube::CustomResourceExt;
    let mut crd = Atsign::crd();
    // A permissive schema, as an older or hand-edited CRD might have.
    crd.spec.versions[0].schema = serde_json::from_value(json!({ "openAPIV3Schema": {
        "type": "object",
        "properties": {
            "spec": { "type": "object", "x-kubernetes-preserve-unknown-fields": true },
            "status": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } } } }))
    .expect("schema");
    let (private, client) = private_cluster_with(crd).await;
    let (_dir, op) = operated(&client).await;

    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns(),
        &kube::core::ApiResource::erase::<Atsign>(&()),
    );
    let bad: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "atfleet.dev/v1alpha1", "kind": "Atsign",
        "metadata": { "name": "broken", "namespace": ns() },
        "spec": { "atSign": 42, "suspend": "maybe" },
    }))
    .expect("object");
    raw.create(&Default::default(), &bad).await.expect("stored");
    create_atsign(&client, "pat", json!({})).await;
    wait_condition(&client, "pat", "Ready", "True").await;

    let events: Api<Event> = Api::namespaced(client.clone(), ns());
    eventually("a MalformedAtsign event", || async {
        events.list(&ListParams::default()).await.is_ok_and(|l| {
            l.items.iter().any(|e| {
                e.reason.as_deref() == Some("MalformedAtsign")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("broken")
            })
        })
    })
    .await;
    assert!(op.metrics.encode().contains("reason=\"MalformedAtsign\""));

    op.stop().await;
    private.shutdown().await;
}

/// A deleted CRAM Secret is generated again, and the running atServer, which read the old one at
/// start, is restarted by the real StatefulSet controller (a new pod), with a Warning Event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_cram_secret_is_regenerated_and_the_atserver_restarted() {
    use k8s_openapi::api::core::v1::Pod;
    let (sim, client) = cluster().await;
    let (_dir, op) = operated(&client).await;
    create_atsign(&client, "uma", json!({})).await;
    wait_condition(&client, "uma", "Ready", "True").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns());
    let first = pods.get("uma-0").await.expect("pod").metadata.uid;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns());
    let old = secrets.get("uma-cram").await.expect("cram").data;
    secrets
        .delete("uma-cram", &DeleteParams::default())
        .await
        .expect("delete the CRAM secret");
    eventually("a new CRAM secret", || async {
        secrets
            .get_opt("uma-cram")
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s.data != old)
    })
    .await;
    eventually("a new uma-0 pod", || async {
        pods.get_opt("uma-0")
            .await
            .ok()
            .flatten()
            .is_some_and(|p| p.metadata.uid != first)
    })
    .await;
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns());
    eventually("a CramSecretRegenerated Warning", || async {
        events.list(&ListParams::default()).await.is_ok_and(|l| {
            l.items.iter().any(|e| {
                e.reason.as_deref() == Some("CramSecretRegenerated")
                    && e.type_.as_deref() == Some("Warning")
            })
        })
    })
    .await;
    wait_condition(&client, "uma", "Ready", "True").await;
    teardown(sim, op).await;
}
