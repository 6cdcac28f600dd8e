//! The pods bound to this node: a watch on `spec.nodeName=<node>`, one worker per process pod, a
//! single status write per simulated pod, and the end of each pod once it is deleted (containers
//! stopped, then the object removed with grace 0 and a uid precondition).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use super::endpoints::Endpoints;
use super::state;
use super::worker::PodWorker;
use super::{Mode, Settings, SIMULATE_LABEL};

/// API writes for simulated pods (status, removal) in flight at once.
const SIMULATED_CONCURRENCY: usize = 32;

enum Kind {
    /// Containers running as processes.
    Worker(PodWorker),
    /// Nothing runs; the status was (or is being) written once.
    Simulated,
    /// Seen only while being deleted (nothing ran here): the object is being removed.
    Removing,
}

struct Tracked {
    namespace: String,
    name: String,
    kind: Kind,
    /// `deletionTimestamp` was seen.
    deleting: bool,
    /// The object is gone from the API.
    gone: bool,
}

/// The grace period for stopping `pod`'s containers.
fn grace_seconds(pod: &Pod) -> i64 {
    pod.metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30)
}

/// Whether this agent already reported `pod` Ready (a restarted agent does not write it again).
fn reported_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.host_ip.as_deref()) == Some("127.0.0.1")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Whether the pod has finished for good (nothing to run).
fn terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

struct Manager {
    settings: Arc<Settings>,
    mode: Mode,
    endpoints: Endpoints,
    namespaces: Option<Store<Namespace>>,
    tracked: HashMap<String, Tracked>,
    /// Namespaces read because the watch had not seen them yet: simulated or not (`None` while
    /// being read).
    looked_up: HashMap<String, Option<bool>>,
    /// (namespace, simulated) once a namespace was read: its pods are considered again.
    retry: mpsc::UnboundedSender<(String, bool)>,
    done: mpsc::UnboundedSender<String>,
    writes: Arc<Semaphore>,
    stop: CancellationToken,
}

/// Runs the pods bound to the node until `stop`, then stops their containers.
pub async fn run(
    settings: Arc<Settings>,
    mode: Mode,
    endpoints: Endpoints,
    stop: CancellationToken,
) {
    let client = settings.client.clone();
    let namespaces = (mode == Mode::Processes).then(|| {
        let (reader, writer) = reflector::store();
        let api: Api<Namespace> = Api::all(client.clone());
        let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
            .default_backoff();
        let s = stop.clone();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            loop {
                tokio::select! {
                    _ = s.cancelled() => return,
                    ev = stream.next() => if ev.is_none() { return },
                }
            }
        });
        reader
    });
    if let Some(ns) = &namespaces {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ns.wait_until_ready() => {}
        }
    }
    let (pods_reader, pods_writer) = reflector::store::<Pod>();
    let api: Api<Pod> = Api::all(client.clone());
    let selector = format!("spec.nodeName={}", settings.node_name);
    let events = reflector::reflector(
        pods_writer,
        watcher(api, watcher::Config::default().fields(&selector)),
    )
    .default_backoff();
    let mut events = std::pin::pin!(events);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let (retry_tx, mut retry_rx) = mpsc::unbounded_channel();
    let mut m = Manager {
        settings,
        mode,
        endpoints,
        namespaces,
        tracked: HashMap::new(),
        looked_up: HashMap::new(),
        retry: retry_tx,
        done: done_tx,
        writes: Arc::new(Semaphore::new(SIMULATED_CONCURRENCY)),
        stop: stop.clone(),
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            uid = done_rx.recv() => {
                if let Some(uid) = uid {
                    m.worker_done(&uid);
                }
            }
            retry = retry_rx.recv() => {
                if let Some((ns, simulated)) = retry {
                    // The namespace's pods not taken on yet, as they are now.
                    let waiting: Vec<_> = pods_reader
                        .state()
                        .into_iter()
                        .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
                        .filter(|p| p.uid().is_some_and(|uid| !m.tracked.contains_key(&uid)))
                        .collect();
                    m.looked_up.insert(ns, Some(simulated));
                    for pod in waiting {
                        m.on_pod(&pod);
                    }
                }
            }
            ev = events.next() => match ev {
                Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) => m.on_pod(&pod),
                Some(Ok(watcher::Event::Delete(pod))) => m.on_gone(&pod),
                Some(Ok(watcher::Event::InitDone)) => {
                    let present: HashSet<String> =
                        pods_reader.state().iter().filter_map(|p| p.uid()).collect();
                    m.forget_missing(&present);
                }
                Some(Ok(watcher::Event::Init)) => {}
                Some(Err(e)) => tracing::warn!(error = %e, "pod watch failed; retrying"),
                None => break,
            }
        }
    }
    m.shutdown().await;
}

impl Manager {
    /// Whether `pod` is simulated; `None` while its namespace is not known yet (then it is
    /// looked up and the pod considered again).
    fn simulated(&mut self, pod: &Pod) -> Option<bool> {
        if self.mode == Mode::Simulate {
            return Some(true);
        }
        let ns = pod.namespace().unwrap_or_default();
        let labelled =
            |n: &Namespace| n.labels().get(SIMULATE_LABEL).map(String::as_str) == Some("true");
        if let Some(n) = self
            .namespaces
            .as_ref()
            .and_then(|s| s.get(&ObjectRef::new(&ns)))
        {
            return Some(labelled(&n));
        }
        if let Some(known) = self.looked_up.get(&ns) {
            return *known;
        }
        // The namespace watch has not seen it yet: read it, then look at the pod again.
        self.looked_up.insert(ns.clone(), None);
        let api: Api<Namespace> = Api::all(self.settings.client.clone());
        let tx = self.retry.clone();
        tokio::spawn(async move {
            let simulated = match api.get_opt(&ns).await {
                Ok(n) => n.as_ref().is_some_and(labelled),
                Err(e) => {
                    tracing::warn!(namespace = %ns, error = %e, "cannot read the namespace; running its pods");
                    false
                }
            };
            let _ = tx.send((ns, simulated));
        });
        None
    }

    fn on_pod(&mut self, pod: &Pod) {
        let Some(uid) = pod.uid() else { return };
        let deleting = pod.metadata.deletion_timestamp.is_some();
        if let Some(t) = self.tracked.get_mut(&uid) {
            if deleting && !t.deleting {
                t.deleting = true;
                match &t.kind {
                    Kind::Worker(w) => {
                        tracing::info!(pod = %t.name, namespace = %t.namespace, "stopping pod");
                        w.stop(grace_seconds(pod));
                    }
                    Kind::Simulated | Kind::Removing => {
                        t.kind = Kind::Removing;
                        self.spawn_remove(pod);
                    }
                }
            }
            return;
        }
        let mut tracked = Tracked {
            namespace: pod.namespace().unwrap_or_default(),
            name: pod.name_any(),
            kind: Kind::Removing,
            deleting,
            gone: false,
        };
        if deleting {
            // Nothing of it runs here (bound and deleted before it started, or an earlier agent
            // ran it): remove the object at once.
            self.spawn_remove(pod);
        } else if terminal(pod) {
            return;
        } else if let Some(simulated) = self.simulated(pod) {
            if !simulated {
                tracing::info!(pod = %tracked.name, namespace = %tracked.namespace, "starting pod");
                tracked.kind = Kind::Worker(PodWorker::start(
                    self.settings.clone(),
                    self.endpoints.clone(),
                    pod.clone(),
                    self.done.clone(),
                ));
                self.tracked.insert(uid, tracked);
                return;
            }
            tracked.kind = Kind::Simulated;
            if !reported_ready(pod) {
                self.spawn_simulated_status(pod);
            }
        } else {
            // Considered again once its namespace is known.
            return;
        }
        self.tracked.insert(uid, tracked);
    }

    /// The object was removed from the API.
    fn on_gone(&mut self, pod: &Pod) {
        let Some(uid) = pod.uid() else { return };
        self.gone(&uid, grace_seconds(pod));
    }

    fn gone(&mut self, uid: &str, grace: i64) {
        let Some(t) = self.tracked.get_mut(uid) else {
            return;
        };
        t.gone = true;
        match &t.kind {
            Kind::Worker(w) => {
                if !w.stopping() {
                    tracing::info!(pod = %t.name, namespace = %t.namespace, "pod removed from the API; stopping it");
                    w.stop(grace);
                }
            }
            Kind::Simulated | Kind::Removing => {
                self.tracked.remove(uid);
            }
        }
    }

    /// After a relist: pods no longer listed are gone.
    fn forget_missing(&mut self, present: &HashSet<String>) {
        let missing: Vec<String> = self
            .tracked
            .keys()
            .filter(|uid| !present.contains(*uid))
            .cloned()
            .collect();
        for uid in missing {
            self.gone(&uid, 0);
        }
    }

    /// A worker's containers have stopped: remove the object when it was being deleted.
    fn worker_done(&mut self, uid: &str) {
        let Some(t) = self.tracked.remove(uid) else {
            return;
        };
        if t.deleting && !t.gone {
            remove(
                self.settings.client.clone(),
                t.namespace,
                t.name,
                uid.to_owned(),
                self.writes.clone(),
                self.stop.clone(),
            );
        }
    }

    fn spawn_remove(&self, pod: &Pod) {
        remove(
            self.settings.client.clone(),
            pod.namespace().unwrap_or_default(),
            pod.name_any(),
            pod.uid().unwrap_or_default(),
            self.writes.clone(),
            self.stop.clone(),
        );
    }

    /// Writes a simulated pod's Ready status once (retried while the API fails).
    fn spawn_simulated_status(&self, pod: &Pod) {
        let api: Api<Pod> = Api::namespaced(
            self.settings.client.clone(),
            &pod.namespace().unwrap_or_default(),
        );
        let name = pod.name_any();
        let patch = json!({ "status": state::simulated_status(pod) });
        let writes = self.writes.clone();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let Ok(_permit) = writes.acquire_owned().await else {
                return;
            };
            let mut delay = Duration::from_millis(200);
            loop {
                match api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => return,
                    Err(kube::Error::Api(e)) if e.code == 404 => return,
                    Err(kube::Error::Api(e)) if e.code == 422 || e.code == 400 => {
                        tracing::warn!(pod = %name, error = %e, "the simulated status was refused");
                        return;
                    }
                    Err(e) => {
                        tracing::info!(pod = %name, error = %e, "cannot write the simulated status; retrying");
                    }
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        });
    }

    async fn shutdown(&mut self) {
        let workers: Vec<PodWorker> = self
            .tracked
            .drain()
            .filter_map(|(_, t)| match t.kind {
                Kind::Worker(w) => Some(w),
                _ => None,
            })
            .collect();
        for w in &workers {
            w.shutdown();
        }
        for w in workers {
            w.wait().await;
        }
    }
}

/// Deletes pod `namespace/name` with grace 0 and a uid precondition, as the real kubelet does once
/// the containers have stopped (retried while the API fails).
fn remove(
    client: kube::Client,
    namespace: String,
    name: String,
    uid: String,
    writes: Arc<Semaphore>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let Ok(_permit) = writes.acquire_owned().await else {
            return;
        };
        let api: Api<Pod> = Api::namespaced(client, &namespace);
        let mut dp = DeleteParams::default().grace_period(0);
        dp.preconditions = Some(Preconditions {
            uid: Some(uid),
            resource_version: None,
        });
        let mut delay = Duration::from_millis(200);
        loop {
            match api.delete(&name, &dp).await {
                Ok(_) => {
                    tracing::info!(pod = %name, namespace = %namespace, "pod stopped and removed");
                    return;
                }
                // Gone already, or a new pod of the same name.
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => return,
                Err(e) => {
                    tracing::warn!(pod = %name, error = %e, "cannot remove the pod; retrying")
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn grace_and_readiness() {
        let p = pod(
            json!({"metadata": {"name": "a", "deletionGracePeriodSeconds": 7},
                           "spec": {"containers": [], "terminationGracePeriodSeconds": 5}}),
        );
        assert_eq!(grace_seconds(&p), 7);
        let p = pod(json!({"metadata": {"name": "a"},
                           "spec": {"containers": [], "terminationGracePeriodSeconds": 5}}));
        assert_eq!(grace_seconds(&p), 5);
        assert_eq!(grace_seconds(&pod(json!({"metadata": {"name": "a"}}))), 30);
        let ready = pod(json!({"metadata": {"name": "a"}, "status": {
            "hostIP": "127.0.0.1", "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}]}}));
        assert!(reported_ready(&ready));
        assert!(!terminal(&ready));
        let scheduled = pod(json!({"metadata": {"name": "a"}, "status": {
            "conditions": [{"type": "PodScheduled", "status": "True"}]}}));
        assert!(!reported_ready(&scheduled));
        let done = pod(json!({"metadata": {"name": "a"}, "status": {"phase": "Succeeded"}}));
        assert!(terminal(&done));
    }
}
