//! What the local cluster installs into a new control plane: the CRDs, the namespaces and the
//! `local` class.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Api;
use serde_json::json;

use super::error::LocalError;
use super::names::{CLASS, NAMESPACE, SYSTEM_NAMESPACE};

const CRDS: [&str; 2] = [
    include_str!("../../../crds/atsign.yaml"),
    include_str!("../../../crds/atserverclass.yaml"),
];

/// The CRDs, the namespaces and the `local` class.
pub(super) async fn install(client: &kube::Client) -> Result<(), LocalError> {
    let pp = PatchParams::apply("atfleet-local").force();
    for doc in CRDS {
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(doc).map_err(|e| LocalError::Manifest(e.to_string()))?;
        atfleet_cluster::apply_crd(client, &crd, "atfleet-local", Duration::from_secs(60)).await?;
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [SYSTEM_NAMESPACE, NAMESPACE] {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        namespaces.patch(ns, &pp, &Patch::Apply(&obj)).await?;
    }
    let class_ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "atfleet.dev",
        "v1alpha1",
        "AtServerClass",
    ));
    let classes: Api<DynamicObject> = Api::all_with(client.clone(), &class_ar);
    let class = json!({
        "apiVersion": "atfleet.dev/v1alpha1",
        "kind": "AtServerClass",
        "metadata": {"name": CLASS},
        "spec": {
            "storage": {"size": "64Mi", "retention": "Delete"},
            "exposure": {"mode": "NodePort", "host": "127.0.0.1"},
        },
    });
    classes.patch(CLASS, &pp, &Patch::Apply(&class)).await?;
    Ok(())
}
