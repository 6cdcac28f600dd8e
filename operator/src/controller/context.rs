//! What every reconcile shares: the operator's settings, clients and memories, and the watch
//! caches of a controller scope.

use std::sync::Arc;
use std::time::Duration;

use super::absent::Absent;
use super::ca_store::CaStore;
use super::cache::Caches;
use super::claims::ClaimMemory;
use super::deregistrations::Deregistrations;
use super::drift::DriftMemory;
use super::route_version::RouteVersion;
use crate::directory::DirectoryClient;
use crate::events::Events;
use crate::metrics::Metrics;
use crate::resolve::Defaults;

/// The finalizer that holds an Atsign until it is deregistered and its pod stopped.
pub const FINALIZER: &str = "atfleet.dev/cleanup";
/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "atfleet-operator";
/// Annotation on an Atsign that skips deregistration on delete (the directory is gone for good).
pub const SKIP_DEREGISTER_ANNOTATION: &str = "atfleet.dev/skip-deregister";

/// Controller settings (from the operator's flags).
#[derive(Debug, Clone)]
pub struct Config {
    pub defaults: Defaults,
    /// Prefix of the owner id registrations are fenced with; the full id adds namespace/name.
    pub owner_id: String,
    /// Namespace of the built-in CA's Secret.
    pub ca_namespace: String,
    pub ca_secret_name: String,
    /// Namespaces to watch; all when empty.
    pub watch_namespaces: Vec<String>,
    pub concurrency: u16,
    /// Requeue of a settled Atsign (jittered).
    pub resync: Duration,
    /// Requeue while waiting for something to happen (jittered).
    pub poll: Duration,
    /// Minimum time between two identical events for one object.
    pub event_interval: Duration,
    /// Reporting instance for events (pod name).
    pub instance: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            defaults: Defaults::default(),
            owner_id: "atfleet".into(),
            ca_namespace: "atfleet-system".into(),
            ca_secret_name: "atfleet-ca".into(),
            watch_namespaces: Vec::new(),
            concurrency: 16,
            resync: Duration::from_secs(300),
            poll: Duration::from_secs(5),
            event_interval: Duration::from_secs(60),
            instance: None,
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: kube::Client,
    pub config: Config,
    pub directory: Option<DirectoryClient>,
    pub metrics: Arc<Metrics>,
    pub events: Events,
    pub(super) ca: CaStore,
    pub(super) claims: ClaimMemory,
    pub(super) absent: Absent,
    pub(super) drift: DriftMemory,
    pub(super) routes: RouteVersion,
    pub(super) deregistered: Deregistrations,
}

/// What the reconciles of one controller scope share: the operator's context and the scope's
/// watch caches.
pub struct Scoped {
    pub(super) ctx: Arc<Context>,
    pub(super) caches: Caches,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(
        client: kube::Client,
        config: Config,
        directory: Option<DirectoryClient>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let events = Events::new(
            client.clone(),
            config.instance.clone(),
            config.event_interval,
        );
        let ca = CaStore::new(client.clone(), &config.ca_namespace, &config.ca_secret_name);
        let claims = ClaimMemory::new(config.resync);
        Arc::new(Self {
            client,
            config,
            directory,
            metrics,
            events,
            ca,
            claims,
            absent: Absent::default(),
            drift: DriftMemory::default(),
            routes: RouteVersion::default(),
            deregistered: Deregistrations::default(),
        })
    }

    /// The owner id a given Atsign's registration is fenced with.
    pub fn owner_for(&self, namespace: &str, name: &str) -> String {
        format!("{}/{}/{}", self.config.owner_id, namespace, name)
    }
}

/// `d` scaled by a random factor in [0.8, 1.2), so requeues of many objects spread out.
pub fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::random::<f64>().mul_add(0.4, 0.8))
}
