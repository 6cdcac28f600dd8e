//! Drift on the real control plane: a hand edit of a child the operator applied is put back,
//! although the child still carries the hash of the operator's last apply.

mod common;

use common::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams};
use kube::Api;
use serde_json::json;

fn image(sts: &StatefulSet) -> Option<String> {
    sts.spec
        .template
        .spec
        .as_ref()
        .and_then(|p| p.containers.first())
        .and_then(|c| c.image.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edited_child_is_applied_again() {
    let (sim, client) = cluster().await;
    let (_dir, op) = operated(&client).await;
    create_atsign(
        &client,
        "drew",
        json!({ "image": "registry.example/atserver:1" }),
    )
    .await;
    wait_condition(&client, "drew", "Ready", "True").await;
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), ns());
    let services: Api<Service> = Api::namespaced(client.clone(), ns());

    // kubectl edit: another image on the StatefulSet, another port on the Service.
    statefulsets
        .patch(
            "drew",
            &PatchParams::default(),
            &Patch::Strategic(json!({ "spec": { "template": { "spec": { "containers": [
                { "name": "atserver", "image": "registry.example/atserver:hand-edited" }
            ] } } } })),
        )
        .await
        .expect("edit the StatefulSet");
    services
        .patch(
            "drew",
            &PatchParams::default(),
            &Patch::Strategic(json!({ "spec": { "ports": [
                { "name": "atprotocol", "port": 6464, "targetPort": 7777 }
            ] } })),
        )
        .await
        .expect("edit the Service");

    eventually("the operator's image and target port back", || async {
        let sts = statefulsets.get("drew").await.ok();
        let svc = services.get("drew").await.ok();
        let target = svc
            .and_then(|s| s.spec)
            .and_then(|s| s.ports)
            .and_then(|p| {
                p.into_iter()
                    .find(|p| p.name.as_deref() == Some("atprotocol"))
            })
            .and_then(|p| p.target_port);
        sts.as_ref().and_then(image).as_deref() == Some("registry.example/atserver:1")
            && target
                == Some(
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(
                        "atprotocol".into(),
                    ),
                )
    })
    .await;
    let metrics = op.metrics.encode();
    for kind in ["StatefulSet", "Service"] {
        assert!(
            metrics.contains(&format!(
                "atfleet_operator_drift_corrections_total{{kind=\"{kind}\"}}"
            )),
            "{metrics}"
        );
    }
    teardown(sim, op).await;
}
