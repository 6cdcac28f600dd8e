//! The Service for each exposure mode, and the Gateway API `TLSRoute` for SNI passthrough.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::DynamicObject;
use kube::core::ApiResource;
use serde_json::json;

use super::names::{selector_labels, service_name, PORT_NAME};
use super::object::{api_resource, dynamic, meta};
use crate::crd::ExposureMode;
use crate::resolve::Resolved;

/// The `TLSRoute` version the cluster serves: Gateway API 1.5 moves it to `v1`, 1.6 drops
/// `v1alpha2`; the reconciler finds out by discovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsRouteVersion {
    V1,
    #[default]
    V1Alpha2,
}

impl TlsRouteVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsRouteVersion::V1 => "v1",
            TlsRouteVersion::V1Alpha2 => "v1alpha2",
        }
    }

    pub fn api_resource(self) -> ApiResource {
        api_resource("gateway.networking.k8s.io", self.as_str(), "TLSRoute")
    }

    /// `v1` when the cluster serves TLSRoute there, else `v1alpha2`; `served` lists each served
    /// version of the group with its kinds.
    pub fn choose<'a>(served: impl IntoIterator<Item = (&'a str, Vec<String>)>) -> Self {
        let v1 = served
            .into_iter()
            .any(|(version, kinds)| version == "v1" && kinds.iter().any(|k| k == "TLSRoute"));
        if v1 {
            TlsRouteVersion::V1
        } else {
            TlsRouteVersion::V1Alpha2
        }
    }
}

/// The `v1alpha2` TLSRoute resource (clusters before Gateway API 1.5).
pub fn tls_route_api_resource() -> ApiResource {
    TlsRouteVersion::V1Alpha2.api_resource()
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
    version: TlsRouteVersion,
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
        &version.api_resource(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_when_served_else_v1alpha2() {
        let kinds = |k: &[&str]| k.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            TlsRouteVersion::choose([
                ("v1", kinds(&["Gateway", "HTTPRoute", "TLSRoute"])),
                ("v1alpha2", kinds(&["TLSRoute"])),
            ]),
            TlsRouteVersion::V1
        );
        assert_eq!(
            TlsRouteVersion::choose([
                ("v1", kinds(&["Gateway", "HTTPRoute"])),
                ("v1alpha2", kinds(&["TLSRoute"])),
            ]),
            TlsRouteVersion::V1Alpha2
        );
        assert_eq!(TlsRouteVersion::choose([]), TlsRouteVersion::V1Alpha2);
    }
}
