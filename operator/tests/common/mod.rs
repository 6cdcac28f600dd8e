//! Harness for controller tests: kubesim, the CRDs, a registration-API directory, a readiness
//! "kubelet" played by the test, and operator replicas running in-process.
#![allow(dead_code)]

pub mod fleet;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atfleet_e2e::kubesim::{Config as SimConfig, Handle, Server};
use atfleet_operator::controller::{Config, Context};
use atfleet_operator::crd::{AtServerClass, Atsign};
use atfleet_operator::directory::DirectoryClient;
use atfleet_operator::leader::{LeaderElector, LeaseConfig};
use atfleet_operator::metrics::Metrics;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, CustomResourceExt, ResourceExt};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub const NS: &str = "fleet";
pub const SYSTEM_NS: &str = "atfleet-system";
pub const TOKEN: &str = "test-token";

/// Polls `check` until it holds; fails after a generous deadline (the machine may be loaded).
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    atfleet_test_support::wait::eventually(what, Duration::from_secs(60), check).await;
}

pub async fn kubesim() -> (Handle, kube::Client) {
    kubesim_with(Atsign::crd()).await
}

/// kubesim with the given Atsign CRD (tests of objects the real schema would refuse).
pub async fn kubesim_with(atsign_crd: CustomResourceDefinition) -> (Handle, kube::Client) {
    let sim = Server::start(SimConfig::default())
        .await
        .expect("kubesim starts");
    let client = sim.client().expect("client");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [atsign_crd, AtServerClass::crd()] {
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("CRD installs");
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [NS, SYSTEM_NS] {
        let ns: Namespace =
            serde_json::from_value(json!({ "metadata": { "name": ns } })).expect("namespace");
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace");
    }
    (sim, client)
}

/// One directory operation, with whether the atServer's StatefulSet existed when it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub method: &'static str,
    pub atsign: String,
    pub statefulset_present: Option<bool>,
}

#[derive(Default)]
pub struct DirectoryState {
    pub records: HashMap<String, (String, u16, String)>,
    pub ops: Vec<Op>,
    pub down: bool,
}

#[derive(Clone)]
pub struct Directory {
    pub url: String,
    pub state: Arc<Mutex<DirectoryState>>,
}

impl Directory {
    pub fn set_down(&self, down: bool) {
        self.state.lock().expect("lock").down = down;
    }
    pub fn record(&self, atsign: &str) -> Option<(String, u16, String)> {
        self.state
            .lock()
            .expect("lock")
            .records
            .get(atsign)
            .cloned()
    }
    pub fn ops(&self) -> Vec<Op> {
        self.state.lock().expect("lock").ops.clone()
    }
}

#[derive(Clone)]
struct DirState {
    shared: Arc<Mutex<DirectoryState>>,
    client: kube::Client,
}

#[derive(Deserialize)]
struct Body {
    host: String,
    port: u16,
    owner: String,
}

#[derive(Deserialize)]
struct Params {
    owner: Option<String>,
}

fn err(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": code, "message": code }))).into_response()
}

/// Whether the atServer for `atsign` (Atsign named after it without '@') has a StatefulSet.
async fn sts_present(client: &kube::Client, atsign: &str) -> bool {
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    api.get_opt(atsign.trim_start_matches('@'))
        .await
        .ok()
        .flatten()
        .is_some()
}

async fn dir_get(State(s): State<DirState>, Path(atsign): Path<String>) -> Response {
    let st = s.shared.lock().expect("lock");
    if st.down {
        return err(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    }
    match st.records.get(&atsign) {
        Some((h, p, o)) => {
            Json(json!({ "atsign": atsign, "host": h, "port": p, "owner": o })).into_response()
        }
        None => err(StatusCode::NOT_FOUND, "not_found"),
    }
}

async fn dir_put(
    State(s): State<DirState>,
    headers: HeaderMap,
    Path(atsign): Path<String>,
    Json(b): Json<Body>,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return err(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let present = sts_present(&s.client, &atsign).await;
    let mut st = s.shared.lock().expect("lock");
    if st.down {
        return err(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    }
    st.ops.push(Op {
        method: "PUT",
        atsign: atsign.clone(),
        statefulset_present: Some(present),
    });
    if let Some(existing) = st.records.get(&atsign) {
        if existing.2 != b.owner {
            return (StatusCode::CONFLICT, Json(json!({ "error": "owner_conflict", "message": "owned", "currentOwner": existing.2 }))).into_response();
        }
    }
    st.records
        .insert(atsign.clone(), (b.host.clone(), b.port, b.owner.clone()));
    Json(json!({ "atsign": atsign, "host": b.host, "port": b.port, "owner": b.owner }))
        .into_response()
}

async fn dir_delete(
    State(s): State<DirState>,
    Path(atsign): Path<String>,
    Query(q): Query<Params>,
) -> Response {
    let present = sts_present(&s.client, &atsign).await;
    let mut st = s.shared.lock().expect("lock");
    if st.down {
        return err(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    }
    st.ops.push(Op {
        method: "DELETE",
        atsign: atsign.clone(),
        statefulset_present: Some(present),
    });
    match st.records.get(&atsign) {
        None => err(StatusCode::NOT_FOUND, "not_found"),
        Some(r) if Some(&r.2) != q.owner.as_ref() => err(StatusCode::CONFLICT, "owner_conflict"),
        Some(_) => {
            st.records.remove(&atsign);
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

pub async fn directory(client: kube::Client) -> Directory {
    let shared: Arc<Mutex<DirectoryState>> = Arc::default();
    let app = Router::new()
        .route(
            "/v1/atsigns/{atsign}",
            get(dir_get).put(dir_put).delete(dir_delete),
        )
        .with_state(DirState {
            shared: shared.clone(),
            client,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    Directory {
        url: format!("http://{addr}"),
        state: shared,
    }
}

/// Plays the kubelet and StatefulSet controller for readiness: every StatefulSet's status follows
/// its spec (ready replicas = replicas, current generation observed). Stops with `stop`.
pub fn readiness_kubelet(client: kube::Client, stop: CancellationToken) {
    readiness_kubelet_every(client, stop, Duration::from_millis(100));
}

pub fn readiness_kubelet_every(client: kube::Client, stop: CancellationToken, interval: Duration) {
    tokio::spawn(async move {
        let api: Api<StatefulSet> = Api::namespaced(client, NS);
        while !stop.is_cancelled() {
            if let Ok(list) = api.list(&ListParams::default()).await {
                for sts in list.items {
                    let replicas = sts.spec.replicas.unwrap_or(1);
                    let generation = sts.metadata.generation;
                    let status = sts.status.clone().unwrap_or_default();
                    let revision = format!("rev-{}", generation.unwrap_or(0));
                    if status.ready_replicas.unwrap_or(0) == replicas
                        && status.observed_generation == generation
                        && status.update_revision.as_deref() == Some(revision.as_str())
                    {
                        continue;
                    }
                    let patch = json!({ "status": {
                        "replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
                        "currentReplicas": replicas, "updatedReplicas": replicas,
                        "observedGeneration": generation, "currentRevision": revision, "updateRevision": revision,
                    }});
                    // Faults may be injected: the next round retries.
                    let _ = api
                        .patch_status(
                            &sts.name_any(),
                            &PatchParams::default(),
                            &Patch::Merge(&patch),
                        )
                        .await;
                }
            }
            tokio::time::sleep(interval).await;
        }
    });
}

pub fn config() -> Config {
    Config {
        ca_namespace: SYSTEM_NS.into(),
        concurrency: 8,
        resync: Duration::from_secs(2),
        poll: Duration::from_millis(200),
        event_interval: Duration::from_secs(60),
        ..Config::default()
    }
}

pub struct Replica {
    pub ctx: Arc<Context>,
    pub metrics: Arc<Metrics>,
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

impl Replica {
    pub fn reconciles(&self) -> u64 {
        let text = self.metrics.encode();
        text.lines()
            .find(|l| l.starts_with("atfleet_operator_reconcile_duration_seconds_count"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
    pub fn is_leader(&self) -> bool {
        self.metrics
            .encode()
            .lines()
            .any(|l| l == "atfleet_operator_leader 1")
    }
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Starts an operator replica; with `identity`, it takes part in leader election.
pub fn operator(
    client: &kube::Client,
    directory: Option<&Directory>,
    identity: Option<&str>,
) -> Replica {
    let dir = directory.map(|d| {
        DirectoryClient::new(&d.url, Some(TOKEN.into()), None)
            .expect("directory client")
            .with_timeout(Duration::from_secs(2))
    });
    let metrics = Arc::new(Metrics::new());
    let mut cfg = config();
    cfg.instance = identity.map(str::to_owned);
    let ctx = Context::new(client.clone(), cfg, dir, metrics.clone());
    let elector = identity.map(|id| {
        LeaderElector::new(
            client.clone(),
            LeaseConfig {
                namespace: SYSTEM_NS.into(),
                name: "atfleet-operator-leader".into(),
                identity: id.into(),
                lease_duration: Duration::from_secs(3),
                renew_interval: Duration::from_millis(500),
            },
        )
    });
    let stop = CancellationToken::new();
    let ready = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(atfleet_operator::operator::run(
        ctx.clone(),
        elector,
        ready.clone(),
        stop.clone(),
    ));
    let _ = ready.load(Ordering::Relaxed);
    Replica {
        ctx,
        metrics,
        stop,
        task,
    }
}

pub async fn create_atsign(client: &kube::Client, name: &str, spec: serde_json::Value) -> Atsign {
    let api: Api<Atsign> = Api::namespaced(client.clone(), NS);
    let mut spec = spec;
    if spec.get("atSign").is_none() {
        spec["atSign"] = json!(format!("@{name}"));
    }
    let obj: Atsign = serde_json::from_value(json!({
        "apiVersion": "atfleet.dev/v1alpha1", "kind": "Atsign",
        "metadata": { "name": name, "namespace": NS },
        "spec": spec,
    }))
    .expect("atsign");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create Atsign")
}

pub async fn condition(client: &kube::Client, name: &str, type_: &str) -> Option<(String, String)> {
    let api: Api<Atsign> = Api::namespaced(client.clone(), NS);
    let a = api.get_opt(name).await.ok()??;
    let c = a
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status, c.reason))
}

pub async fn wait_condition(client: &kube::Client, name: &str, type_: &str, status: &str) {
    eventually(&format!("{name} {type_}={status}"), || async {
        condition(client, name, type_)
            .await
            .is_some_and(|(s, _)| s == status)
    })
    .await;
}

/// The fake directory, one operator replica using it, and the readiness kubelet, against
/// `client`'s kubesim: what most controller tests run.
pub async fn operated(client: &kube::Client) -> (Directory, Replica, CancellationToken) {
    let dir = directory(client.clone()).await;
    let op = operator(client, Some(&dir), None);
    let kubelet = CancellationToken::new();
    readiness_kubelet(client.clone(), kubelet.clone());
    (dir, op, kubelet)
}

/// Stops the readiness kubelet, then the operator, then kubesim.
pub async fn teardown(sim: Handle, op: Replica, kubelet: CancellationToken) {
    kubelet.cancel();
    op.stop().await;
    sim.shutdown().await;
}

/// Installs a namespaced CRD for `kind` in `group` (served and stored as `version`) whose spec,
/// and with `status` a status subresource, take any fields: a stand-in for another project's CRD.
pub async fn install_open_crd(
    client: &kube::Client,
    group: &str,
    version: &str,
    kind: &str,
    status: bool,
) {
    let singular = kind.to_lowercase();
    let plural = format!("{singular}s");
    let open = json!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true });
    let mut properties = json!({ "spec": open });
    let mut served = json!({ "name": version, "served": true, "storage": true });
    if status {
        properties["status"] = open.clone();
        served["subresources"] = json!({ "status": {} });
    }
    served["schema"] = json!({ "openAPIV3Schema": { "type": "object", "properties": properties } });
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("{plural}.{group}") },
        "spec": { "group": group, "scope": "Namespaced",
            "names": { "plural": plural, "singular": singular, "kind": kind },
            "versions": [served] }
    }))
    .expect("crd");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd)
        .await
        .unwrap_or_else(|e| panic!("{kind} CRD: {e}"));
}
