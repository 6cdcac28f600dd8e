//! The TLSRoute version on the real control plane: with Gateway API serving TLSRoute as `v1`
//! (and `v1alpha2`, as 1.5 does) the operator applies `v1`, found by discovery. (`v1alpha2` alone
//! is the shared cluster's other tests' case no more: they all install this CRD; the choice
//! itself is unit-tested in build/service.rs.)

mod common;

use common::*;
use kube::api::DynamicObject;
use kube::Api;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_v1_tls_route_is_applied() {
    let (sim, client) = cluster().await;
    install_tls_route_crd(&client).await;
    let (_dir, op) = operated(&client).await;
    create_atsign(
        &client,
        "tara",
        json!({ "exposure": { "mode": "TLSRoute", "domain": "atsign.example.com",
                              "gateway": { "name": "fleet", "namespace": "gateways" } } }),
    )
    .await;
    wait_condition(&client, "tara", "Ready", "True").await;
    let routes: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns(),
        &atfleet_operator::build::TlsRouteVersion::V1.api_resource(),
    );
    let route = routes.get("tara").await.expect("route");
    assert_eq!(
        route.data["spec"]["rules"][0]["backendRefs"][0]["name"],
        json!("tara")
    );
    let writes: Vec<String> = sim
        .proxy
        .log()
        .into_iter()
        .filter(|l| l.is_write() && l.uri.contains("/tlsroutes"))
        .map(|l| l.uri)
        .collect();
    assert!(!writes.is_empty());
    assert!(
        writes
            .iter()
            .all(|u| u.starts_with("/apis/gateway.networking.k8s.io/v1/")),
        "{writes:?}"
    );
    teardown(sim, op).await;
}
