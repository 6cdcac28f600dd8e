//! Stale children on the real control plane: when an Atsign's spec stops asking for an optional
//! child (its issuer or its exposure mode changed), the operator deletes the one it made.

mod common;

use common::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_the_spec_no_longer_wants_are_deleted() {
    let (sim, client) = cluster().await;
    install_open_crd(&client, "cert-manager.io", "v1", "Certificate", true).await;
    install_tls_route_crd(&client).await;
    let (_dir, op) = operated(&client).await;
    let certificates: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns(),
        &atfleet_operator::build::certificate_api_resource(),
    );
    let routes: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns(),
        &atfleet_operator::build::tls_route_api_resource(),
    );
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns());

    // A Certificate of the same name that someone else made is not the operator's to delete.
    let mut foreign =
        DynamicObject::new("paul", &atfleet_operator::build::certificate_api_resource())
            .data(json!({ "spec": { "secretName": "elsewhere" } }));
    foreign.metadata.namespace = Some(ns().into());
    certificates
        .create(&PostParams::default(), &foreign)
        .await
        .expect("foreign certificate");
    create_atsign(&client, "paul", json!({})).await;

    create_atsign(
        &client,
        "olga",
        json!({
            "tls": { "issuerRef": { "name": "acme" } },
            "exposure": { "mode": "TLSRoute", "domain": "atsign.example.com",
                          "gateway": { "name": "fleet", "namespace": "gateways" } },
        }),
    )
    .await;
    eventually(
        "olga's Certificate, TLSRoute and trust ConfigMap",
        || async {
            certificates.get_opt("olga").await.ok().flatten().is_some()
                && routes.get_opt("olga").await.ok().flatten().is_some()
                && config_maps
                    .get_opt("olga-trust")
                    .await
                    .ok()
                    .flatten()
                    .is_some()
        },
    )
    .await;

    // Back to the defaults: the built-in CA and a ClusterIP Service.
    let atsigns: Api<atfleet_operator::crd::Atsign> = Api::namespaced(client.clone(), ns());
    atsigns
        .patch(
            "olga",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "tls": null, "exposure": null } })),
        )
        .await
        .expect("patch olga");
    eventually("olga's stale children deleted", || async {
        certificates.get_opt("olga").await.ok().flatten().is_none()
            && routes.get_opt("olga").await.ok().flatten().is_none()
            && config_maps
                .get_opt("olga-trust")
                .await
                .ok()
                .flatten()
                .is_none()
    })
    .await;
    wait_condition(&client, "olga", "Ready", "True").await;
    let status = atsigns.get("olga").await.expect("olga").status;
    assert_eq!(
        status.and_then(|s| s.certificate).map(|c| c.source),
        Some("BuiltIn".into())
    );

    wait_condition(&client, "paul", "Ready", "True").await;
    assert!(
        certificates.get_opt("paul").await.expect("get").is_some(),
        "a Certificate without paul's owner reference is left alone"
    );
    teardown(sim, op).await;
}
