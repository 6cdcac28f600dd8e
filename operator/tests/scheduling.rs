//! Scheduling knobs on the real control plane: an atServer with no resources set is not
//! BestEffort (the apiserver's QoS class of the pod), and a class's placement reaches the pod the
//! StatefulSet controller creates.

mod common;

use atfleet_operator::crd::AtServerClass;
use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};
use kube::Api;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_resources_and_class_placement_reach_the_pod() {
    let (sim, client) = cluster().await;
    let classes: Api<AtServerClass> = Api::all(client.clone());
    let class_name = format!("placed-{}", &ns()[ns().len() - 8..]);
    let class: AtServerClass = serde_json::from_value(json!({
        "apiVersion": "atfleet.dev/v1alpha1", "kind": "AtServerClass",
        "metadata": { "name": class_name },
        "spec": {
            "imagePullSecrets": [{ "name": "registry-creds" }],
            "scheduling": {
                "tolerations": [{ "key": "dedicated", "operator": "Equal", "value": "atservers",
                                  "effect": "NoSchedule" }],
                "topologySpreadConstraints": [{ "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": { "matchLabels": { "app.kubernetes.io/name": "atserver" } } }],
            },
        },
    }))
    .expect("class");
    classes
        .create(&PostParams::default(), &class)
        .await
        .expect("class");
    let (_dir, op) = operated(&client).await;
    create_atsign(&client, "quin", json!({})).await;
    create_atsign(&client, "pia", json!({ "className": class_name })).await;
    wait_condition(&client, "quin", "Ready", "True").await;
    wait_condition(&client, "pia", "Ready", "True").await;

    let pods: Api<Pod> = Api::namespaced(client.clone(), ns());
    let quin = pods.get("quin-0").await.expect("pod");
    assert_eq!(
        quin.status.and_then(|s| s.qos_class).as_deref(),
        Some("Burstable"),
        "an atServer without resources set must not be BestEffort"
    );
    let pia = pods.get("pia-0").await.expect("pod").spec.expect("spec");
    assert_eq!(
        pia.image_pull_secrets
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.name)
            .collect::<Vec<_>>(),
        ["registry-creds"]
    );
    assert!(pia
        .tolerations
        .unwrap_or_default()
        .iter()
        .any(|t| t.key.as_deref() == Some("dedicated")));
    assert_eq!(pia.topology_spread_constraints.map(|t| t.len()), Some(1));

    let _ = classes.delete(&class_name, &DeleteParams::default()).await;
    teardown(sim, op).await;
}
