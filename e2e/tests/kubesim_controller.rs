//! A kube-runtime `Controller`, unchanged, converges against kubesim: it owns ConfigMaps, writes
//! status with server-side apply and cleans up through a finalizer.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{install_crd, start};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, ResourceExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{finalizer, Event};
use kube::runtime::{conditions, wait::await_condition, watcher};
use kube::{CustomResource, CustomResourceExt, Resource};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "test.atfleet.dev",
    version = "v1",
    kind = "Gadget",
    namespaced,
    status = "GadgetStatus"
)]
pub struct GadgetSpec {
    size: i32,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GadgetStatus {
    ready: bool,
    doubled: i32,
    observed_generation: Option<i64>,
}

const FINALIZER: &str = "gadgets.test.atfleet.dev/cleanup";
const MANAGER: &str = "gadget-controller";

struct Ctx {
    client: kube::Client,
    cleanups: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Finalizer(#[from] Box<kube::runtime::finalizer::Error<kube::Error>>),
}

async fn reconcile(gadget: Arc<Gadget>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = gadget.namespace().unwrap_or_default();
    let gadgets: Api<Gadget> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&gadgets, FINALIZER, gadget, |event| async {
        match event {
            Event::Apply(g) => apply(&g, &ctx).await,
            Event::Cleanup(_) => {
                ctx.cleanups.fetch_add(1, Ordering::SeqCst);
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

async fn apply(g: &Gadget, ctx: &Ctx) -> Result<Action, kube::Error> {
    let ns = g.namespace().unwrap_or_default();
    let owner = g.controller_owner_ref(&()).map(|o| vec![o]);
    let doubled = g.spec.size * 2;
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": g.name_any(), "ownerReferences": owner},
        "data": {"doubled": doubled.to_string()},
    });
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    cms.patch(
        &g.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(cm),
    )
    .await?;
    let status = json!({
        "apiVersion": "test.atfleet.dev/v1", "kind": "Gadget",
        "status": {"ready": true, "doubled": doubled, "observedGeneration": g.meta().generation},
    });
    let gadgets: Api<Gadget> = Api::namespaced(ctx.client.clone(), &ns);
    gadgets
        .patch_status(
            &g.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(status),
        )
        .await?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

async fn within<F: std::future::Future>(f: F) -> Result<F::Output, tokio::time::error::Elapsed> {
    tokio::time::timeout(Duration::from_secs(30), f).await
}

fn error_policy(_: Arc<Gadget>, _: &Error, _: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_millis(100))
}

fn converged(size: i32, generation: i64) -> impl kube::runtime::wait::Condition<Gadget> {
    move |g: Option<&Gadget>| {
        g.and_then(|g| g.status.as_ref()).is_some_and(|s| {
            s.ready && s.doubled == size * 2 && s.observed_generation == Some(generation)
        })
    }
}

#[tokio::test]
async fn controller_converges_and_finalizes() {
    let sim = start().await;
    let client = sim.client().expect("client");
    install_crd(&client, &Gadget::crd()).await;
    let gadgets: Api<Gadget> = Api::default_namespaced(client.clone());
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        cleanups: AtomicUsize::new(0),
    });
    let controller = Controller::new(gadgets.clone(), watcher::Config::default())
        .owns(cms.clone(), watcher::Config::default())
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));
    let running = tokio::spawn(controller);

    gadgets
        .create(
            &PostParams::default(),
            &Gadget::new("g", GadgetSpec { size: 2 }),
        )
        .await
        .expect("create");
    within(await_condition(gadgets.clone(), "g", converged(2, 1)))
        .await
        .expect("converged in time")
        .expect("watch");
    let g = gadgets.get("g").await.expect("get");
    assert_eq!(g.finalizers(), [FINALIZER.to_string()]);
    assert_eq!(
        cms.get("g")
            .await
            .expect("owned configmap")
            .data
            .unwrap_or_default()
            .get("doubled")
            .map(String::as_str),
        Some("4")
    );

    gadgets
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 5}})),
        )
        .await
        .expect("resize");
    within(await_condition(gadgets.clone(), "g", converged(5, 2)))
        .await
        .expect("reconverged in time")
        .expect("watch");
    let cm_ready = |c: Option<&ConfigMap>| {
        c.and_then(|c| c.data.as_ref())
            .and_then(|d| d.get("doubled"))
            .is_some_and(|d| d == "10")
    };
    within(await_condition(cms.clone(), "g", cm_ready))
        .await
        .expect("configmap updated")
        .expect("watch");

    let uid = g.uid().unwrap_or_default();
    gadgets
        .delete("g", &DeleteParams::default())
        .await
        .expect("delete");
    within(await_condition(
        gadgets.clone(),
        "g",
        conditions::is_deleted(&uid),
    ))
    .await
    .expect("finalized in time")
    .expect("watch");
    assert_eq!(ctx.cleanups.load(Ordering::SeqCst), 1);
    assert!(
        cms.get_opt("g").await.expect("get").is_none(),
        "owned configmap collected"
    );

    running.abort();
    sim.shutdown().await;
}
