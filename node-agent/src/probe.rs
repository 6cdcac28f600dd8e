//! httpGet and tcpSocket probes against a container's loopback ports.

use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The container port a probe or Service names (number or port name).
pub fn container_port(container: &Container, port: &IntOrString) -> Option<i32> {
    match port {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port),
    }
}

/// Runs `probe` once; `ports` maps container ports to loopback ports.
pub async fn check(probe: &Probe, container: &Container, ports: &[(i32, u16)]) -> bool {
    let timeout = Duration::from_secs(
        probe
            .timeout_seconds
            .unwrap_or(1)
            .max(1)
            .unsigned_abs()
            .into(),
    );
    let local = |port: &IntOrString| {
        let c = container_port(container, port)?;
        ports.iter().find(|(p, _)| *p == c).map(|(_, l)| *l)
    };
    if let Some(get) = &probe.http_get {
        let Some(port) = local(&get.port) else {
            return false;
        };
        let path = get.path.as_deref().unwrap_or("/");
        let Ok(uri) = format!("http://127.0.0.1:{port}{path}").parse::<hyper::Uri>() else {
            return false;
        };
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        return matches!(
            tokio::time::timeout(timeout, client.get(uri)).await,
            Ok(Ok(resp)) if (200..400).contains(&resp.status().as_u16())
        );
    }
    if let Some(tcp) = &probe.tcp_socket {
        let Some(port) = local(&tcp.port) else {
            return false;
        };
        return matches!(
            tokio::time::timeout(timeout, tokio::net::TcpStream::connect(("127.0.0.1", port)))
                .await,
            Ok(Ok(_))
        );
    }
    // exec and gRPC probes are not run: such a container counts as ready once started.
    true
}
