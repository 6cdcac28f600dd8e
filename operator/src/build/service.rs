//! The Service for each exposure mode, and the Gateway API `TLSRoute` for SNI passthrough.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::DynamicObject;
use kube::core::ApiResource;
use serde_json::json;

use super::{api_resource, dynamic, meta, selector_labels, service_name, PORT_NAME};
use crate::crd::ExposureMode;
use crate::resolve::Resolved;

pub fn tls_route_api_resource() -> ApiResource {
    api_resource("gateway.networking.k8s.io", "v1alpha2", "TLSRoute")
}

pub fn service(r: &Resolved, owner: &OwnerReference) -> Service {
    let e = &r.exposure;
    let mut metadata = meta(service_name(&r.name), r, Some(owner));
    if !e.service_annotations.is_empty() {
        metadata.annotations = Some(e.service_annotations.clone());
    }
    let type_ = match e.mode {
        ExposureMode::ClusterIP | ExposureMode::TLSRoute => "ClusterIP",
        ExposureMode::NodePort => "NodePort",
        ExposureMode::LoadBalancer => "LoadBalancer",
    };
    let port = ServicePort {
        name: Some(PORT_NAME.into()),
        port: e.port,
        target_port: Some(IntOrString::String(PORT_NAME.into())),
        protocol: Some("TCP".into()),
        node_port: match e.mode {
            ExposureMode::NodePort => e.node_port,
            _ => None,
        },
        ..ServicePort::default()
    };
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(type_.into()),
            selector: Some(selector_labels(r)),
            ports: Some(vec![port]),
            load_balancer_class: match e.mode {
                ExposureMode::LoadBalancer => e.load_balancer_class.clone(),
                _ => None,
            },
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The `TLSRoute` when exposure is through a Gateway and the hostname is known.
pub fn tls_route(
    r: &Resolved,
    host: Option<&str>,
    owner: &OwnerReference,
) -> Option<DynamicObject> {
    if r.exposure.mode != ExposureMode::TLSRoute {
        return None;
    }
    let gateway = r.exposure.gateway.as_ref()?;
    let host = host?;
    let mut parent =
        json!({ "name": gateway.name, "kind": "Gateway", "group": "gateway.networking.k8s.io" });
    if let Some(obj) = parent.as_object_mut() {
        if let Some(ns) = &gateway.namespace {
            obj.insert("namespace".into(), json!(ns));
        }
        if let Some(section) = &gateway.section_name {
            obj.insert("sectionName".into(), json!(section));
        }
    }
    Some(dynamic(
        &tls_route_api_resource(),
        meta(r.name.clone(), r, Some(owner)),
        json!({
            "spec": {
                "parentRefs": [parent],
                "hostnames": [host],
                "rules": [{ "backendRefs": [{ "name": service_name(&r.name), "port": r.exposure.port }] }],
            }
        }),
    ))
}
