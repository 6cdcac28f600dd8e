//! Shared helpers for the kubesim tests.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use atfleet_e2e::kubesim::{Config, Handle, Server};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::core::Status;
use serde_json::json;

pub async fn start() -> Handle {
    start_with(Config::default()).await
}

pub async fn start_with(config: Config) -> Handle {
    Server::start(config).await.expect("kubesim starts")
}

/// The API status of a failed call.
pub fn status<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> Box<Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Polls `check` until it holds, failing after a generous deadline.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A namespaced `Widget` CRD (example.com/v1) with a status subresource, pruning, a preserved
/// free-form field, CEL rules (an immutable field, a pattern, a cross-field comparison) and a map list.
pub fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["owner"],
                            "x-kubernetes-validations": [{"rule": "self.size <= self.maxSize", "message": "size must not exceed maxSize"}],
                            "properties": {
                                "owner": {"type": "string", "x-kubernetes-validations": [
                                    {"rule": "self == oldSelf", "message": "owner is immutable"},
                                    {"rule": "self.matches('^@[a-z0-9_]+$')", "message": "owner must be an atSign"}]},
                                "size": {"type": "integer", "minimum": 0, "default": 1},
                                "maxSize": {"type": "integer", "default": 10},
                                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                                "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                                          "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}}
                            }
                        },
                        "status": {"type": "object", "properties": {
                            "phase": {"type": "string"},
                            "conditions": {"type": "array", "items": {"type": "object", "properties": {
                                "type": {"type": "string"}, "status": {"type": "string"}}}}}}
                    }
                }}
            }]
        }
    }))
    .expect("valid CRD")
}

/// Creates a CRD and waits until it is established.
pub async fn install_crd(client: &kube::Client, crd: &CustomResourceDefinition) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), crd)
        .await
        .expect("CRD created");
    let name = crd.metadata.name.clone().unwrap_or_default();
    let cond = kube::runtime::conditions::is_crd_established();
    tokio::time::timeout(
        Duration::from_secs(20),
        kube::runtime::wait::await_condition(crds, &name, cond),
    )
    .await
    .expect("CRD established in time")
    .expect("CRD watch works");
}
