//! Running the controller: the watches feeding the work queue, one controller per watched
//! namespace (or one for all), and the built-in CA's rotation beside them.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::core::DeserializeGuard;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, ResourceExt};
use tokio_util::sync::CancellationToken;

use super::ca_rotation;
use super::cache;
use super::context::{jitter, Context, Scoped};
use super::error::Error;
use super::reconcile;
use crate::build::{managed_selector, LABEL_INSTANCE};
use crate::crd::{AtServerClass, Atsign};
use crate::metrics::Metrics;

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
    let class_metrics = scoped.ctx.metrics.clone();
    controller
        .with_config(controller::Config::default().concurrency(concurrency))
        .owns_stream(sts_changes)
        .owns_stream(svc_changes)
        // Secrets have no owner reference (they may outlive the Atsign): map them by label.
        .watches_stream(secret_changes, |s: Secret| {
            let name = s.labels().get(LABEL_INSTANCE)?.clone();
            Some(ObjectRef::new(&name).within(&s.namespace()?))
        })
        // A changed class re-reconciles the Atsigns that use it; each one waits in the queue.
        .watches_stream(class_changes, move |class: AtServerClass| {
            let class_name = class.name_any();
            store
                .state()
                .into_iter()
                .filter_map(|a| match &a.0 {
                    Ok(atsign)
                        if atsign.spec.class_name.as_deref() == Some(class_name.as_str()) =>
                    {
                        let ns = atsign.namespace()?;
                        class_metrics.enqueued(&ns, &atsign.name_any());
                        Some(ObjectRef::new(&atsign.name_any()).within(&ns))
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
