//! Harness for controller tests: the real control plane (see [`cluster`]), a registration-API
//! directory, and operator replicas running in-process under the chart's RBAC.
#![allow(dead_code)]

pub mod cluster;
pub mod fleet;
pub mod renewal;

#[allow(unused_imports)]
pub use cluster::{
    cluster_with, ns, operator_client, private_cluster_with, system_ns, RbacEdit, Setup,
    TestCluster,
};

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atfleet_operator::controller::{Config, Context};
use atfleet_operator::crd::Atsign;
use atfleet_operator::directory::DirectoryClient;
use atfleet_operator::leader::{LeaderElector, LeaseConfig};
use atfleet_operator::metrics::Metrics;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::Api;
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "test-token";

/// Polls `check` until it holds; fails after a generous deadline (the machine may be loaded).
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    atfleet_test_support::wait::eventually(what, Duration::from_secs(60), check).await;
}

/// The shared control plane with a fresh namespace whose pods the node agent reports Ready
/// without running them, and the operator's identity under the chart's RBAC.
pub async fn cluster() -> (TestCluster, kube::Client) {
    cluster_with(Setup::default()).await
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
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), ns());
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

pub fn config() -> Config {
    Config {
        ca_namespace: system_ns().into(),
        watch_namespaces: vec![ns().into()],
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

/// Starts an operator replica (as the chart's ServiceAccount, through the fault proxy); with
/// `identity`, it takes part in leader election.
pub fn operator(directory: Option<&Directory>, identity: Option<&str>) -> Replica {
    let client = &operator_client();
    let dir = directory.map(|d| {
        DirectoryClient::new(&d.url, Some(TOKEN.into()), None)
            .expect("directory client")
            .with_timeout(Duration::from_secs(2))
    });
    let mut cfg = config();
    cfg.instance = identity.map(str::to_owned);
    let elector = identity.map(|id| {
        LeaderElector::new(
            client.clone(),
            LeaseConfig {
                namespace: system_ns().into(),
                name: "atfleet-operator-leader".into(),
                identity: id.into(),
                lease_duration: Duration::from_secs(3),
                renew_interval: Duration::from_millis(500),
            },
        )
    });
    start_replica(cfg, dir, elector)
}

/// Starts an operator replica with `cfg`, as the chart's ServiceAccount through the fault proxy.
pub fn start_replica(
    cfg: Config,
    directory: Option<DirectoryClient>,
    elector: Option<LeaderElector>,
) -> Replica {
    let metrics = Arc::new(Metrics::new());
    let ctx = Context::new(operator_client(), cfg, directory, metrics.clone());
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

/// A key of a Secret as text.
pub fn secret_text(secret: &k8s_openapi::api::core::v1::Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
}

/// Asks for a rotation of the built-in CA, as a user does: the annotation on its Secret.
pub async fn request_ca_rotation(client: &kube::Client) {
    let cas: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), system_ns());
    cas.patch(
        "atfleet-ca",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({ "metadata": { "annotations": {
            atfleet_operator::controller::ROTATE_ANNOTATION: "requested" } } })),
    )
    .await
    .expect("ask for a rotation");
}

pub async fn create_atsign(client: &kube::Client, name: &str, spec: serde_json::Value) -> Atsign {
    let api: Api<Atsign> = Api::namespaced(client.clone(), ns());
    let mut spec = spec;
    if spec.get("atSign").is_none() {
        spec["atSign"] = json!(format!("@{name}"));
    }
    let obj: Atsign = serde_json::from_value(json!({
        "apiVersion": "atfleet.dev/v1alpha1", "kind": "Atsign",
        "metadata": { "name": name, "namespace": ns() },
        "spec": spec,
    }))
    .expect("atsign");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create Atsign")
}

pub async fn condition(client: &kube::Client, name: &str, type_: &str) -> Option<(String, String)> {
    let api: Api<Atsign> = Api::namespaced(client.clone(), ns());
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

/// The fake directory and one operator replica using it: what most controller tests run.
pub async fn operated(client: &kube::Client) -> (Directory, Replica) {
    let dir = directory(client.clone()).await;
    let op = operator(Some(&dir), None);
    (dir, op)
}

/// Stops the operator, checks that the apiserver refused none of its requests under the chart's
/// RBAC, then removes the test's namespaces.
pub async fn teardown(cluster: TestCluster, op: Replica) {
    op.stop().await;
    let forbidden = cluster.forbidden();
    cluster.shutdown().await;
    assert!(
        forbidden.is_empty(),
        "the chart's RBAC refused the operator: {forbidden:?}"
    );
}

/// Installs a namespaced CRD for `kind` in `group` (served and stored as `version`) whose spec,
/// and with `status` a status subresource, take any fields: a stand-in for another project's CRD.
/// Applied server-side, so tests sharing the cluster may install the same one; a `*.k8s.io` group
/// carries the API-approval annotation the apiserver demands (as Gateway API's CRDs do).
pub async fn install_open_crd(
    client: &kube::Client,
    group: &str,
    version: &str,
    kind: &str,
    status: bool,
) {
    install_open_crd_versions(client, group, &[version], kind, status).await;
}

/// The Gateway API TLSRoute stand-in every test installs: served as `v1` (stored) and
/// `v1alpha2`, as Gateway API 1.5 does, so tests sharing the cluster agree on it.
pub async fn install_tls_route_crd(client: &kube::Client) {
    install_open_crd_versions(
        client,
        "gateway.networking.k8s.io",
        &["v1", "v1alpha2"],
        "TLSRoute",
        false,
    )
    .await;
}

/// As [`install_open_crd`], served in each of `versions` (the first is stored).
pub async fn install_open_crd_versions(
    client: &kube::Client,
    group: &str,
    versions: &[&str],
    kind: &str,
    status: bool,
) {
    let singular = kind.to_lowercase();
    let plural = format!("{singular}s");
    let open = json!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true });
    let mut properties = json!({ "spec": open });
    if status {
        properties["status"] = open.clone();
    }
    let served: Vec<serde_json::Value> = versions
        .iter()
        .enumerate()
        .map(|(i, version)| {
            let mut v = json!({ "name": version, "served": true, "storage": i == 0 });
            if status {
                v["subresources"] = json!({ "status": {} });
            }
            v["schema"] =
                json!({ "openAPIV3Schema": { "type": "object", "properties": properties } });
            v
        })
        .collect();
    let mut metadata = json!({ "name": format!("{plural}.{group}") });
    if group.ends_with(".k8s.io") {
        metadata["annotations"] =
            json!({ "api-approved.kubernetes.io": "unapproved, test stand-in" });
    }
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": metadata,
        "spec": { "group": group, "scope": "Namespaced",
            "names": { "plural": plural, "singular": singular, "kind": kind },
            "versions": served }
    }))
    .expect("crd");
    cluster::apply_crd(client, &crd).await;
}
