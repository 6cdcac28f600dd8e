//! Rollouts as the real StatefulSet controller runs them (the node agent reports pods Ready
//! without running them): a pod stuck on a broken revision is replaced once the template moved
//! on, and under OnDelete Progressing ends when the user has replaced the pod.

mod common;

use common::*;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::Api;
use serde_json::json;

async fn set_image(client: &kube::Client, name: &str, image: &str) {
    let atsigns: Api<atfleet_operator::crd::Atsign> = Api::namespaced(client.clone(), ns());
    atsigns
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "image": image } })),
        )
        .await
        .expect("new image");
}

fn revision(pod: &Pod) -> Option<String> {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash").cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_stuck_on_a_broken_revision_is_replaced() {
    let (sim, client) = cluster().await;
    let (_dir, op) = operated(&client).await;
    create_atsign(
        &client,
        "stan",
        json!({ "image": "registry.example/atserver:1" }),
    )
    .await;
    wait_condition(&client, "stan", "Ready", "True").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns());
    let broken = pods.get("stan-0").await.expect("pod");

    // The revision is broken: its pod has not been Ready for five minutes (crash-looping).
    let since = (Timestamp::now() - SignedDuration::from_mins(5)).to_string();
    pods.patch_status(
        "stan-0",
        &PatchParams::default(),
        &Patch::Strategic(json!({ "status": { "conditions": [
            { "type": "Ready", "status": "False", "lastTransitionTime": since }
        ] } })),
    )
    .await
    .expect("unready");
    wait_condition(&client, "stan", "Ready", "False").await;

    // A fixed template: the StatefulSet controller waits for the unhealthy pod forever; the
    // operator deletes it and the controller recreates it on the fixed revision.
    set_image(&client, "stan", "registry.example/atserver:2").await;
    eventually("stan-0 replaced on the new revision", || async {
        pods.get_opt("stan-0")
            .await
            .ok()
            .flatten()
            .is_some_and(|p| {
                p.metadata.uid != broken.metadata.uid && revision(&p) != revision(&broken)
            })
    })
    .await;
    wait_condition(&client, "stan", "Ready", "True").await;
    wait_condition(&client, "stan", "Progressing", "False").await;
    teardown(sim, op).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_delete_progressing_ends_once_the_pod_is_replaced_by_hand() {
    let (sim, client) = cluster().await;
    let classes: Api<atfleet_operator::crd::AtServerClass> = Api::all(client.clone());
    let class_name = format!("manual-{}", &ns()[ns().len() - 8..]);
    let class: atfleet_operator::crd::AtServerClass = serde_json::from_value(json!({
        "apiVersion": "atfleet.dev/v1alpha1", "kind": "AtServerClass",
        "metadata": { "name": class_name },
        "spec": { "rollout": { "strategy": "OnDelete" } },
    }))
    .expect("class");
    classes
        .create(&Default::default(), &class)
        .await
        .expect("class");
    let (_dir, op) = operated(&client).await;
    create_atsign(
        &client,
        "otto",
        json!({ "className": class_name, "image": "registry.example/atserver:1" }),
    )
    .await;
    wait_condition(&client, "otto", "Ready", "True").await;
    wait_condition(&client, "otto", "Progressing", "False").await;

    set_image(&client, "otto", "registry.example/atserver:2").await;
    wait_condition(&client, "otto", "Progressing", "True").await;
    // OnDelete: the operator leaves the pod to the user.
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns());
    pods.delete("otto-0", &DeleteParams::default())
        .await
        .expect("delete the pod");
    wait_condition(&client, "otto", "Progressing", "False").await;
    wait_condition(&client, "otto", "Ready", "True").await;

    let _ = classes.delete(&class_name, &DeleteParams::default()).await;
    teardown(sim, op).await;
}
