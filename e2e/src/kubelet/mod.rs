//! The process kubelet: makes the pods of StatefulSets and runs them on this machine.
//!
//! It watches StatefulSets, Pods and Services (through reflectors, so a settled cluster costs no
//! API reads), and on every change or `resync`:
//! - creates `<sts>-<ordinal>` pods from the template (owner reference, template labels, revision
//!   label), deletes pods beyond `replicas` and, unless `updateStrategy` is `OnDelete`, pods of an
//!   older template; reports `status` (replicas, readyReplicas, revisions, observedGeneration);
//! - runs each pod scheduled to this node ([`Mode::Processes`]: one process per container, the
//!   image mapped to a local binary by [`ImageMap`], volumes as local directories, mount paths and
//!   listen addresses in args and env rewritten to them, readiness probes, restarts with backoff;
//!   [`Mode::SimulateReadiness`]: no process, the pod is reported Ready at once);
//! - on pod deletion stops the containers (SIGTERM, SIGKILL after the grace period) and then
//!   removes the pod object (a delete with grace 0, as the real kubelet does);
//! - forwards 127.0.0.1:<nodePort> of NodePort/LoadBalancer Services to a ready selected pod.
//!
//! Not done: liveness and startup probes, exec probes (counted as passing), init containers,
//! resource limits, `runAsUser` (processes run as the caller), hostPath and projected volumes.

mod endpoints;
mod env;
mod error;
mod forward;
mod images;
mod pods;
mod probe;
mod state;
mod volumes;
mod worker;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use error::KubeletError;
pub use images::{image_name, ImageMap};

use endpoints::Endpoints;
use forward::{Forwarder, Target};
use worker::PodWorker;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run containers as local processes.
    Processes,
    /// Start nothing; report every pod Ready as soon as it exists (fleet-scale tests).
    SimulateReadiness,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    /// `spec.nodeName` of the pods this kubelet makes and runs.
    pub node_name: String,
    /// Pod directories (`pods/`) and claim directories (`claims/<ns>/<claim>`, kept) live here.
    pub state_dir: PathBuf,
    pub images: ImageMap,
    /// First restart delay, doubled on each crash up to `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Probe periods and initial delays are shortened to at most this.
    pub max_probe_period: Duration,
    /// Full re-check interval besides watch events.
    pub resync: Duration,
}

impl Config {
    /// Process mode with the given state directory and binary directory.
    pub fn processes(state_dir: impl Into<PathBuf>, bin_dir: impl Into<PathBuf>) -> Self {
        Self {
            mode: Mode::Processes,
            node_name: "local".into(),
            state_dir: state_dir.into(),
            images: ImageMap::new(bin_dir),
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(10),
            max_probe_period: Duration::from_secs(1),
            resync: Duration::from_secs(2),
        }
    }

    /// Readiness-only mode: no processes, no files.
    pub fn simulate() -> Self {
        Self {
            mode: Mode::SimulateReadiness,
            ..Self::processes(std::env::temp_dir(), std::env::temp_dir())
        }
    }
}

/// What pod workers share.
pub(crate) struct Settings {
    client: kube::Client,
    mode: Mode,
    state_dir: PathBuf,
    images: ImageMap,
    backoff_base: Duration,
    backoff_cap: Duration,
    max_probe_period: Duration,
}

pub struct Kubelet;

impl Kubelet {
    /// Starts watching and running pods in the background; the first sync happens once the
    /// watches have listed everything.
    pub fn start(client: kube::Client, config: Config) -> Handle {
        let stop = CancellationToken::new();
        let notify = Arc::new(Notify::new());
        let statefulsets = reflect::<StatefulSet>(&client, &notify, &stop);
        let pods = reflect::<Pod>(&client, &notify, &stop);
        let services = reflect::<Service>(&client, &notify, &stop);
        let settings = Arc::new(Settings {
            client: client.clone(),
            mode: config.mode,
            state_dir: config.state_dir.clone(),
            images: config.images.clone(),
            backoff_base: config.backoff_base,
            backoff_cap: config.backoff_cap,
            max_probe_period: config.max_probe_period,
        });
        let mut node = Node {
            client,
            config,
            settings,
            statefulsets,
            pods,
            services,
            workers: HashMap::new(),
            forwarders: HashMap::new(),
            bind_failures: HashSet::new(),
            settled: HashMap::new(),
            endpoints: Endpoints::default(),
            notify: notify.clone(),
        };
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let ready = async {
                let _ = node.statefulsets.wait_until_ready().await;
                let _ = node.pods.wait_until_ready().await;
                let _ = node.services.wait_until_ready().await;
            };
            tokio::select! {
                _ = s.cancelled() => return,
                _ = ready => {}
            }
            loop {
                node.sync().await;
                tokio::select! {
                    _ = s.cancelled() => break,
                    _ = notify.notified() => {}
                    _ = tokio::time::sleep(node.config.resync) => {}
                }
            }
            node.shutdown().await;
        });
        Handle { stop, task }
    }
}

/// A running kubelet.
pub struct Handle {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Stops every pod's containers (SIGTERM, then SIGKILL after each pod's grace period) and
    /// the kubelet. Pod objects are left as they are.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

fn reflect<K>(client: &kube::Client, notify: &Arc<Notify>, stop: &CancellationToken) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let api: Api<K> = Api::all(client.clone());
    let stream =
        reflector::reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
    let notify = notify.clone();
    let stop = stop.clone();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                ev = stream.next() => match ev {
                    Some(_) => notify.notify_one(),
                    None => return,
                }
            }
        }
    });
    reader
}

type Key = (String, String);

fn key<K: ResourceExt>(o: &K) -> Key {
    (o.namespace().unwrap_or_default(), o.name_any())
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

struct Node {
    client: kube::Client,
    config: Config,
    settings: Arc<Settings>,
    statefulsets: Store<StatefulSet>,
    pods: Store<Pod>,
    services: Store<Service>,
    workers: HashMap<Key, PodWorker>,
    forwarders: HashMap<(String, String, u16), Forwarder>,
    bind_failures: HashSet<(String, String, u16)>,
    endpoints: Endpoints,
    /// Wakes the sync loop (watch events, finished pod workers).
    notify: Arc<Notify>,
    /// StatefulSets whose last sync had nothing to do, with what that sync saw: while neither
    /// they nor their pods change there is nothing to check again.
    settled: HashMap<Key, String>,
}

/// StatefulSets synced at the same time (each sync waits on API round trips).
const SYNC_CONCURRENCY: usize = 16;

/// The pods by name and by controlling owner, so a sync is linear in the number of objects.
struct PodIndex<'a> {
    by_name: HashMap<Key, &'a Arc<Pod>>,
    by_owner: HashMap<&'a str, Vec<&'a Arc<Pod>>>,
}

impl<'a> PodIndex<'a> {
    fn new(pods: &'a [Arc<Pod>]) -> Self {
        let mut by_owner: HashMap<&'a str, Vec<&'a Arc<Pod>>> = HashMap::new();
        for pod in pods {
            let controller = pod
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true));
            if let Some(owner) = controller {
                by_owner.entry(owner.uid.as_str()).or_default().push(pod);
            }
        }
        Self {
            by_name: pods.iter().map(|p| (key(p.as_ref()), p)).collect(),
            by_owner,
        }
    }

    /// The pods `sts` controls, in its namespace.
    fn owned(&self, sts: &StatefulSet) -> Vec<&'a Arc<Pod>> {
        let ns = sts.namespace();
        sts.metadata
            .uid
            .as_deref()
            .and_then(|uid| self.by_owner.get(uid))
            .map(|pods| {
                pods.iter()
                    .copied()
                    .filter(|p| p.namespace() == ns && pods::owned_by(p, sts))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn exists(&self, namespace: &str, name: &str) -> bool {
        self.by_name
            .contains_key(&(namespace.to_owned(), name.to_owned()))
    }

    /// What a sync of `sts` depends on: its version and those of its pods and pod names.
    fn fingerprint(&self, sts: &StatefulSet, owned: &[&Arc<Pod>]) -> String {
        let ns = sts.namespace().unwrap_or_default();
        let name = sts.name_any();
        let rv = |p: &Pod| p.metadata.resource_version.clone().unwrap_or_default();
        let mut parts = vec![sts.metadata.resource_version.clone().unwrap_or_default()];
        parts.extend(owned.iter().map(|p| format!("{}@{}", p.name_any(), rv(p))));
        for i in 0..pods::desired_replicas(sts) {
            let pod_name = format!("{name}-{i}");
            let seen = self
                .by_name
                .get(&(ns.clone(), pod_name.clone()))
                .map(|p| rv(p))
                .unwrap_or_default();
            parts.push(format!("{pod_name}={seen}"));
        }
        parts.join(",")
    }
}

impl Node {
    async fn sync(&mut self) {
        let pods = self.pods.state();
        let statefulsets = self.statefulsets.state();
        let settled = {
            let index = PodIndex::new(&pods);
            let jobs: Vec<_> = statefulsets
                .iter()
                .map(|sts| self.sync_one(sts, &index))
                .collect();
            futures::stream::iter(jobs)
                .buffer_unordered(SYNC_CONCURRENCY)
                .filter_map(std::future::ready)
                .collect::<HashMap<Key, String>>()
                .await
        };
        self.settled = settled;
        self.sync_pods(&pods).await;
        if self.config.mode == Mode::Processes {
            self.sync_services().await;
        }
    }

    /// Syncs `sts` unless nothing it depends on changed since a sync that had nothing to do;
    /// returns what it saw when it had nothing to do.
    async fn sync_one(&self, sts: &StatefulSet, index: &PodIndex<'_>) -> Option<(Key, String)> {
        let owned = index.owned(sts);
        let seen = index.fingerprint(sts, &owned);
        let k = key(sts);
        if self.settled.get(&k) == Some(&seen) {
            return Some((k, seen));
        }
        match self.sync_statefulset(sts, &owned, index).await {
            Ok(false) => Some((k, seen)),
            Ok(true) => None,
            Err(e) => {
                tracing::warn!(statefulset = %sts.name_any(), error = %e, "statefulset sync failed");
                None
            }
        }
    }

    /// Makes and removes the pods of `sts` and reports its status; true when it wrote anything.
    async fn sync_statefulset(
        &self,
        sts: &StatefulSet,
        owned: &[&Arc<Pod>],
        index: &PodIndex<'_>,
    ) -> Result<bool, KubeletError> {
        let ns = sts.namespace().unwrap_or_default();
        let name = sts.name_any();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let desired = pods::desired_replicas(sts);
        let rev = pods::revision(sts);
        let mut wrote = false;
        if sts.metadata.deletion_timestamp.is_none() {
            for i in 0..desired {
                let pod_name = format!("{name}-{i}");
                if index.exists(&ns, &pod_name) {
                    continue;
                }
                wrote = true;
                if let Some(pod) = pods::pod_for(sts, i, &self.config.node_name) {
                    match api.create(&PostParams::default(), &pod).await {
                        Ok(_) => tracing::info!(pod = %pod_name, "pod created"),
                        Err(kube::Error::Api(e)) if e.code == 409 => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        let on_delete = sts
            .spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.type_.as_deref())
            == Some("OnDelete");
        for pod in owned {
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let beyond = pods::ordinal(&name, &pod.name_any()).is_none_or(|o| o >= desired);
            let stale = pod.labels().get(pods::REVISION_LABEL) != Some(&rev);
            if beyond || (stale && !on_delete) {
                wrote = true;
                match api.delete(&pod.name_any(), &DeleteParams::default()).await {
                    Ok(_) => tracing::info!(pod = %pod.name_any(), beyond, stale, "pod deleted"),
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let live: Vec<&&Arc<Pod>> = owned
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let ready = live.iter().filter(|p| pod_ready(p)).count();
        let updated = live
            .iter()
            .filter(|p| p.labels().get(pods::REVISION_LABEL) == Some(&rev))
            .count();
        let old = sts.status.clone().unwrap_or_default();
        let settled = updated == live.len() && live.len() == usize::try_from(desired).unwrap_or(0);
        let current_revision = if settled || old.current_revision.is_none() {
            rev.clone()
        } else {
            old.current_revision.clone().unwrap_or_default()
        };
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        let status = json!({
            "replicas": count(live.len()),
            "readyReplicas": count(ready),
            "availableReplicas": count(ready),
            "currentReplicas": count(if settled { live.len() } else { live.len() - updated }),
            "updatedReplicas": count(updated),
            "observedGeneration": sts.metadata.generation,
            "currentRevision": current_revision,
            "updateRevision": rev,
        });
        let unchanged = old.replicas == count(live.len())
            && old.ready_replicas.unwrap_or(0) == count(ready)
            && old.available_replicas.unwrap_or(0) == count(ready)
            && old.updated_replicas.unwrap_or(0) == count(updated)
            && old.observed_generation == sts.metadata.generation
            && old.current_revision.as_deref() == Some(current_revision.as_str())
            && old.update_revision.as_deref() == Some(rev.as_str());
        if !unchanged {
            wrote = true;
            let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), &ns);
            match api
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "status": status })),
                )
                .await
            {
                Ok(_) | Err(kube::Error::Api(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(wrote)
    }

    async fn sync_pods(&mut self, pods: &[Arc<Pod>]) {
        let node = self.config.node_name.as_str();
        let mine: HashMap<Key, &Arc<Pod>> = pods
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
            .map(|p| (key(p.as_ref()), p))
            .collect();
        // Workers whose pod is gone or was replaced by a new one of the same name.
        let keys: Vec<Key> = self.workers.keys().cloned().collect();
        for k in keys {
            let current = mine.get(&k).and_then(|p| p.uid());
            let Some(w) = self.workers.get(&k) else {
                continue;
            };
            if current.as_deref() != Some(w.uid.as_str())
                || mine
                    .get(&k)
                    .is_some_and(|p| p.metadata.deletion_timestamp.is_some())
            {
                let grace = mine
                    .get(&k)
                    .and_then(|p| p.metadata.deletion_grace_period_seconds)
                    .unwrap_or(30);
                if !w.stopping() {
                    w.stop(grace);
                }
                if w.finished() {
                    if let Some(w) = self.workers.remove(&k) {
                        w.wait().await;
                    }
                }
            }
        }
        for (k, pod) in mine {
            let deleting = pod.metadata.deletion_timestamp.is_some();
            if deleting {
                if self.workers.contains_key(&k) {
                    continue;
                }
                let api: Api<Pod> = Api::namespaced(self.client.clone(), &k.0);
                let mut dp = DeleteParams::default().grace_period(0);
                dp.preconditions = pod.uid().map(|uid| kube::api::Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                });
                match api.delete(&k.1, &dp).await {
                    Ok(_) => tracing::info!(pod = %k.1, "pod stopped and removed"),
                    Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                    Err(e) => tracing::warn!(pod = %k.1, error = %e, "cannot remove the pod"),
                }
            } else if !self.workers.contains_key(&k) {
                tracing::info!(pod = %k.1, namespace = %k.0, "starting pod");
                let w = PodWorker::start(
                    self.settings.clone(),
                    self.endpoints.clone(),
                    (**pod).clone(),
                    self.notify.clone(),
                );
                self.workers.insert(k, w);
            }
        }
    }

    async fn sync_services(&mut self) {
        let mut wanted: HashMap<(String, String, u16), Target> = HashMap::new();
        for svc in self.services.state() {
            let Some(spec) = &svc.spec else { continue };
            if !matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer")) {
                continue;
            }
            let selector: BTreeMap<String, String> = spec.selector.clone().unwrap_or_default();
            if selector.is_empty() {
                continue;
            }
            for port in spec.ports.iter().flatten() {
                let Some(node_port) = port.node_port.and_then(|p| u16::try_from(p).ok()) else {
                    continue;
                };
                let target = Target {
                    namespace: svc.namespace().unwrap_or_default(),
                    selector: selector.clone(),
                    port: port
                        .target_port
                        .clone()
                        .unwrap_or(IntOrString::Int(port.port)),
                };
                wanted.insert(
                    (target.namespace.clone(), svc.name_any(), node_port),
                    target,
                );
            }
        }
        self.forwarders
            .retain(|k, f| wanted.get(k).is_some_and(|t| *t == f.target));
        self.bind_failures.retain(|k| wanted.contains_key(k));
        for (k, target) in wanted {
            if self.forwarders.contains_key(&k) {
                continue;
            }
            match Forwarder::start(k.2, target, self.endpoints.clone()).await {
                Ok(f) => {
                    tracing::info!(service = %k.1, node_port = k.2, "forwarding 127.0.0.1:{}", k.2);
                    self.bind_failures.remove(&k);
                    self.forwarders.insert(k, f);
                }
                Err(e) => {
                    if self.bind_failures.insert(k.clone()) {
                        tracing::warn!(service = %k.1, node_port = k.2, error = %e, "cannot listen on the node port");
                    }
                }
            }
        }
    }

    async fn shutdown(&mut self) {
        for w in self.workers.values() {
            w.stop(30);
        }
        for (_, w) in self.workers.drain() {
            w.wait().await;
        }
        self.forwarders.clear();
    }
}
