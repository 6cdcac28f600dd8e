//! Secret and ConfigMap volumes of running process pods kept current, as the kubelet does (a
//! renewed certificate reaches a running atServer, which reloads it, without a restart).
//!
//! Watches rather than a periodic re-read: a change arrives in well under a second, and an idle
//! fleet costs nothing. One metadata-only watch of Secrets and one of ConfigMaps per namespace
//! that has process pods mounting them (started with the first such pod, stopped with the last;
//! simulated pods take no part): the agent neither holds the namespace's secret data nor lists
//! Secrets cluster-wide. When a mounted object's `resourceVersion` moves, that pod re-reads the
//! object (one GET) and rewrites the volume atomically if its data changed.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::atomic;
use super::volumes::{Mounted, SourceKind};

/// Events a pod may fall behind by before it re-reads everything it mounts.
const BACKLOG: usize = 4096;

/// A mounted kind of object changed (or was listed afresh) in the namespace.
#[derive(Debug, Clone)]
pub struct Change {
    kind: SourceKind,
    name: String,
    version: Option<String>,
}

struct Entry {
    subscribers: usize,
    tx: broadcast::Sender<Change>,
    stop: CancellationToken,
}

/// The per-namespace watches, shared by every pod worker.
#[derive(Clone)]
pub struct Watches {
    client: kube::Client,
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    stop: CancellationToken,
}

impl Watches {
    pub fn new(client: kube::Client, stop: CancellationToken) -> Self {
        Self {
            client,
            entries: Arc::default(),
            stop,
        }
    }

    /// Changes in `namespace` from now on; the watches run while a subscription is held.
    pub fn subscribe(&self, namespace: &str) -> Subscription {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.entry(namespace.to_owned()).or_insert_with(|| {
            let (tx, _) = broadcast::channel(BACKLOG);
            let stop = self.stop.child_token();
            tokio::spawn(watch(
                Api::<PartialObjectMeta<Secret>>::namespaced(self.client.clone(), namespace),
                SourceKind::Secret,
                tx.clone(),
                stop.clone(),
            ));
            tokio::spawn(watch(
                Api::<PartialObjectMeta<ConfigMap>>::namespaced(self.client.clone(), namespace),
                SourceKind::ConfigMap,
                tx.clone(),
                stop.clone(),
            ));
            tracing::debug!(namespace, "watching Secrets and ConfigMaps");
            Entry {
                subscribers: 0,
                tx,
                stop,
            }
        });
        entry.subscribers += 1;
        Subscription {
            rx: entry.tx.subscribe(),
            namespace: namespace.to_owned(),
            entries: self.entries.clone(),
        }
    }
}

/// A pod's view of its namespace's changes; the last one dropped stops the watches.
pub struct Subscription {
    rx: broadcast::Receiver<Change>,
    namespace: String,
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = entries.get_mut(&self.namespace) {
            entry.subscribers = entry.subscribers.saturating_sub(1);
            if entry.subscribers == 0 {
                entry.stop.cancel();
                entries.remove(&self.namespace);
            }
        }
    }
}

/// Relays the names and versions of `K` objects as they change, until `stop`.
async fn watch<K>(
    api: Api<PartialObjectMeta<K>>,
    kind: SourceKind,
    tx: broadcast::Sender<Change>,
    stop: CancellationToken,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    // Metadata only: the agent needs the names and versions, not the namespace's secrets.
    let events = watcher(api, watcher::Config::default()).default_backoff();
    let mut events = std::pin::pin!(events);
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            e = events.next() => e,
        };
        match event {
            Some(Ok(
                watcher::Event::Apply(m) | watcher::Event::InitApply(m) | watcher::Event::Delete(m),
            )) => {
                let _ = tx.send(Change {
                    kind,
                    name: m.name_any(),
                    version: m.resource_version(),
                });
            }
            Some(Ok(watcher::Event::Init | watcher::Event::InitDone)) => {}
            Some(Err(e)) => {
                tracing::warn!(?kind, error = %e, "volume source watch failed; retrying")
            }
            None => return,
        }
    }
}

/// Rewrites `mounted` volumes of a pod in `namespace` whenever their objects change, until
/// `stop`. A failed read or write keeps the volume as it is and is tried again on the next
/// change.
pub async fn keep_current(
    client: kube::Client,
    namespace: String,
    mut subscription: Subscription,
    mut mounted: Vec<Mounted>,
    stop: CancellationToken,
) {
    if mounted.is_empty() {
        return;
    }
    loop {
        let change = tokio::select! {
            _ = stop.cancelled() => return,
            c = subscription.rx.recv() => c,
        };
        match change {
            Ok(c) => {
                for m in mounted.iter_mut().filter(|m| {
                    m.source.kind == c.kind && m.source.name == c.name && m.version != c.version
                }) {
                    refresh(&client, &namespace, m).await;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                for m in &mut mounted {
                    refresh(&client, &namespace, m).await;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn refresh(client: &kube::Client, namespace: &str, m: &mut Mounted) {
    let result = match m.source.fetch(client, namespace).await {
        Ok((version, data)) if data == m.data => Ok((version, None)),
        Ok((version, data)) => m
            .source
            .payload(&data)
            .and_then(|p| atomic::write(&m.dir, &p))
            .map(|()| (version, Some(data))),
        Err(e) => Err(e),
    };
    match result {
        Ok((version, data)) => {
            m.version = version;
            if let Some(data) = data {
                m.data = data;
                tracing::info!(
                    namespace,
                    object = %m.source.name,
                    kind = ?m.source.kind,
                    dir = %m.dir.display(),
                    "volume refreshed"
                );
            }
        }
        Err(e) => {
            tracing::warn!(namespace, object = %m.source.name, error = %e, "cannot refresh a volume; keeping it as it is");
        }
    }
}
