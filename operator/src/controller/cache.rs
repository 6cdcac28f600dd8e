//! Watch caches of what reconciles read: the owned StatefulSets and Services, the labelled
//! Secrets and the AtServerClasses. Reconciles read children here instead of GETting them, so a
//! settled fleet costs no API reads; the watches that fill the caches also trigger reconciles.

use futures::Stream;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use crate::crd::AtServerClass;

/// Read handles of the caches one controller scope fills.
#[derive(Clone)]
pub struct Caches {
    pub statefulsets: Store<StatefulSet>,
    pub services: Store<Service>,
    pub secrets: Store<Secret>,
    pub classes: Store<AtServerClass>,
}

impl Caches {
    /// Waits until every cache holds its first full listing.
    pub async fn ready(&self) {
        // An error here means the writer is gone (shutdown); reconciles then fall back to reads.
        let _ = self.statefulsets.wait_until_ready().await;
        let _ = self.services.wait_until_ready().await;
        let _ = self.secrets.wait_until_ready().await;
        let _ = self.classes.wait_until_ready().await;
    }
}

/// A namespaced object of the cache, by name.
pub fn lookup<K>(store: &Store<K>, namespace: &str, name: &str) -> Option<K>
where
    K: Resource<DynamicType = ()> + Clone,
{
    store
        .get(&ObjectRef::new(name).within(namespace))
        .map(|o| K::clone(&o))
}

/// The watch stream for `api`, reflected into a new store with `trim` applied to every object
/// first (so the cache keeps only what reconciles read); yields every object that changed.
pub fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    trim: fn(&mut K),
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(trim)
        .reflect(writer)
        .touched_objects();
    (reader, stream)
}

/// Field-ownership bookkeeping is never read by the operator and is a large part of each object.
pub fn drop_managed_fields<K: Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// A StatefulSet as reconciles read it: metadata, replicas and status. The pod template is
/// applied from the Atsign and compared by hash, never read back; only its digest is kept, to
/// notice a hand edit.
pub fn trim_statefulset(sts: &mut StatefulSet) {
    drop_managed_fields(sts);
    super::drift::stamp_statefulset(sts);
    sts.spec.template = Default::default();
    sts.spec.volume_claim_templates = None;
}
