//! The Atsign controller: watches, the reconcile pipeline, the finalizer and status.

mod apply;
mod ca_rotation;
mod ca_store;
mod cache;
mod claims;
mod cleanup;
mod conditions;
mod drift;
mod materials;
mod orphans;
mod reconcile;
mod register;
mod rollout;
mod route_version;
mod status;
mod step;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::core::DeserializeGuard;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::build::{managed_selector, LABEL_INSTANCE};
use crate::crd::{AtServerClass, Atsign};
use crate::directory::{DirectoryClient, DirectoryError};
use crate::events::Events;
use crate::metrics::Metrics;
use crate::resolve::Defaults;
use crate::tls::TlsError;

pub use ca_rotation::ROTATE_ANNOTATION;
pub use conditions::{compute_status, Observed};

/// The finalizer that holds an Atsign until it is deregistered and its pod stopped.
pub const FINALIZER: &str = "atfleet.dev/cleanup";
/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "atfleet-operator";
/// Annotation on an Atsign that skips deregistration on delete (the directory is gone for good).
pub const SKIP_DEREGISTER_ANNOTATION: &str = "atfleet.dev/skip-deregister";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("certificate: {0}")]
    Tls(#[from] TlsError),
    #[error("directory: {0}")]
    Directory(#[from] DirectoryError),
    #[error("malformed Atsign: {0}")]
    Malformed(String),
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
    #[error("CA Secret {0} lacks ca.crt or ca.key")]
    CaSecret(String),
    #[error(transparent)]
    Orphan(#[from] orphans::OrphanError),
}

impl Error {
    /// Metric label and event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(s)) if s.code == 409 => "Conflict",
            // RBAC refused a request: the chart's grants and the operator disagree.
            Error::Kube(kube::Error::Api(s)) if s.code == 403 => "Forbidden",
            Error::Kube(kube::Error::Api(s)) if s.code >= 500 => "ApiServerError",
            Error::Kube(_) => "KubeError",
            Error::Tls(_) => "CertificateError",
            Error::Directory(e) => e.reason(),
            Error::Malformed(_) => "MalformedAtsign",
            Error::Json(_) => "EncodingError",
            Error::CaSecret(_) => "CaSecretInvalid",
            Error::Orphan(_) => "StaleChildNotDeleted",
        }
    }
}

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
    ca: ca_store::CaStore,
    claims: claims::ClaimMemory,
    absent: orphans::Absent,
    drift: drift::DriftMemory,
    routes: route_version::RouteVersion,
    deregistered: cleanup::Deregistrations,
}

/// What the reconciles of one controller scope share: the operator's context and the scope's
/// watch caches.
pub struct Scoped {
    ctx: Arc<Context>,
    caches: cache::Caches,
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
        let ca =
            ca_store::CaStore::new(client.clone(), &config.ca_namespace, &config.ca_secret_name);
        let claims = claims::ClaimMemory::new(config.resync);
        Arc::new(Self {
            client,
            config,
            directory,
            metrics,
            events,
            ca,
            claims,
            absent: orphans::Absent::default(),
            drift: drift::DriftMemory::default(),
            routes: route_version::RouteVersion::default(),
            deregistered: cleanup::Deregistrations::default(),
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

fn error_policy(_obj: Arc<DeserializeGuard<Atsign>>, err: &Error, scoped: Arc<Scoped>) -> Action {
    scoped.ctx.metrics.reconcile_failed(err.reason());
    Action::requeue(jitter(scoped.ctx.config.poll * 2))
}

/// Runs the controller for one namespace (or all) until `shutdown` resolves.
async fn run_scope(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let api = |c: &kube::Client| -> (
        Api<DeserializeGuard<Atsign>>,
        Api<StatefulSet>,
        Api<Service>,
        Api<Secret>,
    ) {
        match &namespace {
            Some(ns) => (
                Api::namespaced(c.clone(), ns),
                Api::namespaced(c.clone(), ns),
                Api::namespaced(c.clone(), ns),
                Api::namespaced(c.clone(), ns),
            ),
            None => (
                Api::all(c.clone()),
                Api::all(c.clone()),
                Api::all(c.clone()),
                Api::all(c.clone()),
            ),
        }
    };
    let (atsigns, statefulsets, services, secrets) = api(&client);
    let ours = watcher::Config::default()
        .labels(&managed_selector())
        .any_semantic();
    let (sts_cache, sts_changes) =
        cache::reflect(statefulsets, ours.clone(), cache::trim_statefulset);
    let (svc_cache, svc_changes) =
        cache::reflect(services, ours.clone(), cache::drop_managed_fields);
    let (secret_cache, secret_changes) = cache::reflect(secrets, ours, cache::drop_managed_fields);
    // Every change that will trigger a reconcile starts a wait the work-queue metrics report.
    let metrics = ctx.metrics.clone();
    let sts_changes = sts_changes.inspect(queued(metrics.clone(), owning_atsign));
    let svc_changes = svc_changes.inspect(queued(metrics.clone(), owning_atsign));
    let secret_changes = secret_changes.inspect(queued(metrics.clone(), instance_label));
    let (class_cache, class_changes) = cache::reflect(
        Api::<AtServerClass>::all(client),
        watcher::Config::default().any_semantic(),
        cache::drop_managed_fields,
    );
    let (store, writer) = reflector::store();
    let atsign_changes = watcher(atsigns, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(cache::drop_managed_fields)
        .reflect(writer)
        .applied_objects()
        .inspect(queued(metrics, |m| m.name.clone()));
    let controller = Controller::for_stream(atsign_changes, store.clone());
    let scoped = Arc::new(Scoped {
        ctx,
        caches: cache::Caches {
            statefulsets: sts_cache,
            services: svc_cache,
            secrets: secret_cache,
            classes: class_cache,
        },
    });
    let concurrency = scoped.ctx.config.concurrency;
    let queue_metrics = scoped.ctx.metrics.clone();
    controller
        .with_config(controller::Config::default().concurrency(concurrency))
        .owns_stream(sts_changes)
        .owns_stream(svc_changes)
        // Secrets have no owner reference (they may outlive the Atsign): map them by label.
        .watches_stream(secret_changes, |s: Secret| {
            let name = s.labels().get(LABEL_INSTANCE)?.clone();
            Some(ObjectRef::new(&name).within(&s.namespace()?))
        })
        // A changed class re-reconciles the Atsigns that use it.
        .watches_stream(class_changes, move |class: AtServerClass| {
            let class_name = class.name_any();
            store
                .state()
                .into_iter()
                .filter_map(|a| match &a.0 {
                    Ok(atsign)
                        if atsign.spec.class_name.as_deref() == Some(class_name.as_str()) =>
                    {
                        Some(ObjectRef::new(&atsign.name_any()).within(&atsign.namespace()?))
                    }
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, error_policy, scoped)
        .for_each(|res| {
            let queue_metrics = queue_metrics.clone();
            async move {
                match res {
                    Ok((obj, _)) => tracing::debug!(object = %obj, "reconciled"),
                    Err(controller::Error::ReconcilerFailed(e, obj)) => {
                        tracing::warn!(object = %obj, error = %e, "reconcile failed")
                    }
                    // A child's last change (a StatefulSet or Secret going away with its Atsign) names
                    // an Atsign that is already gone: the normal end of a deletion, not a problem.
                    Err(controller::Error::ObjectNotFound(obj)) => {
                        if let Some(ns) = &obj.namespace {
                            queue_metrics.dequeued(ns, &obj.name);
                        }
                        tracing::debug!(object = %obj, "change for an Atsign that no longer exists")
                    }
                    Err(e) => tracing::warn!(error = %e, "controller"),
                }
            }
        })
        .await;
}

/// Advances the built-in CA's rotation once per resync (see [`ca_rotation`]) until shutdown.
async fn rotate_ca(ctx: Arc<Context>, shutdown: CancellationToken) {
    loop {
        match ca_rotation::advance(&ctx).await {
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "built-in CA rotation"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(jitter(ctx.config.resync)) => {}
        }
    }
}

/// A watch-stream hook: a change of `K` starts the wait of the Atsign `atsign` maps it to.
fn queued<K: kube::Resource>(
    metrics: Arc<Metrics>,
    atsign: fn(&kube::api::ObjectMeta) -> Option<String>,
) -> impl Fn(&Result<K, watcher::Error>) {
    move |change| {
        if let Ok(object) = change {
            let meta = object.meta();
            if let (Some(ns), Some(name)) = (meta.namespace.as_deref(), atsign(meta)) {
                metrics.enqueued(ns, &name);
            }
        }
    }
}

/// The Atsign that controls a child, by its owner reference.
fn owning_atsign(meta: &kube::api::ObjectMeta) -> Option<String> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "Atsign" && o.controller == Some(true))
        .map(|o| o.name.clone())
}

/// The Atsign a Secret belongs to, by its instance label (Secrets have no owner reference).
fn instance_label(meta: &kube::api::ObjectMeta) -> Option<String> {
    meta.labels.as_ref()?.get(LABEL_INSTANCE).cloned()
}

/// Runs the controller over every watched namespace until `shutdown` is cancelled.
pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    let scopes: Vec<Option<String>> = if ctx.config.watch_namespaces.is_empty() {
        vec![None]
    } else {
        ctx.config
            .watch_namespaces
            .iter()
            .cloned()
            .map(Some)
            .collect()
    };
    let tasks = scopes
        .into_iter()
        .map(|scope| run_scope(ctx.clone(), scope, shutdown.clone().cancelled_owned()));
    let rotation = rotate_ca(ctx.clone(), shutdown.clone());
    futures::future::join(futures::future::join_all(tasks), rotation).await;
}
