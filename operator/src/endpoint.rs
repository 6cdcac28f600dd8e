//! The address the directory publishes for an atServer, derived from its exposure mode and,
//! where Kubernetes chooses it (node port, load-balancer address), from the observed Service.

use std::fmt;

use k8s_openapi::api::core::v1::Service;

use crate::crd::ExposureMode;
use crate::resolve::Resolved;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The published host when it does not depend on observed state, else `None`
/// (a LoadBalancer without a configured DNS name).
pub fn static_host(r: &Resolved) -> Option<String> {
    if let Some(host) = &r.exposure.host {
        return Some(host.clone());
    }
    match r.exposure.mode {
        ExposureMode::ClusterIP => Some(format!(
            "{}.{}.svc.{}",
            r.name, r.namespace, r.cluster_domain
        )),
        ExposureMode::TLSRoute => r
            .exposure
            .domain
            .as_ref()
            .map(|d| format!("{}.{}.{}", r.name, r.namespace, d)),
        ExposureMode::NodePort | ExposureMode::LoadBalancer => None,
    }
}

/// The published `host:port`, or `None` while Kubernetes has not yet chosen part of it.
pub fn published(r: &Resolved, service: Option<&Service>) -> Option<Endpoint> {
    let host = static_host(r).or_else(|| match r.exposure.mode {
        ExposureMode::LoadBalancer => load_balancer_address(service?),
        _ => None,
    })?;
    let port = match r.exposure.mode {
        ExposureMode::NodePort => r
            .exposure
            .node_port
            .or_else(|| observed_node_port(service?))?,
        _ => r.exposure.port,
    };
    Some(Endpoint {
        host,
        port: u16::try_from(port).ok().filter(|p| *p != 0)?,
    })
}

fn load_balancer_address(service: &Service) -> Option<String> {
    let ingress = service
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?;
    ingress
        .iter()
        .find_map(|i| i.hostname.clone().or_else(|| i.ip.clone()))
}

fn observed_node_port(service: &Service) -> Option<i32> {
    service
        .spec
        .as_ref()?
        .ports
        .as_ref()?
        .iter()
        .find(|p| p.name.as_deref() == Some(crate::build::PORT_NAME))
        .and_then(|p| p.node_port)
}
