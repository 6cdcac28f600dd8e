//! Building blocks of a child object: its metadata and owner reference, and dynamic objects of
//! kinds without Rust types (cert-manager's Certificate, Gateway API's TLSRoute).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::DynamicObject;
use kube::core::{ApiResource, GroupVersionKind};
use kube::Resource;

use super::names::labels;
use crate::crd::Atsign;
use crate::resolve::Resolved;

pub(super) fn owner_reference(atsign: &Atsign) -> OwnerReference {
    // An Atsign read from the API always has a uid; a missing one yields a reference the API
    // server rejects, surfacing the problem instead of building orphans.
    atsign
        .controller_owner_ref(&())
        .unwrap_or_else(|| OwnerReference {
            api_version: Atsign::api_version(&()).into_owned(),
            kind: Atsign::kind(&()).into_owned(),
            name: atsign.metadata.name.clone().unwrap_or_default(),
            uid: String::new(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        })
}

pub(super) fn meta(name: String, r: &Resolved, owner: Option<&OwnerReference>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(r.namespace.clone()),
        labels: Some(labels(r)),
        owner_references: owner.map(|o| vec![o.clone()]),
        ..ObjectMeta::default()
    }
}

pub(super) fn dynamic(
    ar: &ApiResource,
    metadata: ObjectMeta,
    data: serde_json::Value,
) -> DynamicObject {
    let mut obj = DynamicObject::new(metadata.name.as_deref().unwrap_or_default(), ar).data(data);
    obj.metadata = metadata;
    obj
}

pub(super) fn api_resource(group: &str, version: &str, kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}
