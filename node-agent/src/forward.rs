//! A TCP forwarder per Service NodePort on 127.0.0.1: each connection goes to a ready pod the
//! Service selects, resolved when the connection arrives.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::endpoints::Endpoints;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub namespace: String,
    pub selector: BTreeMap<String, String>,
    pub port: IntOrString,
}

pub struct Forwarder {
    pub target: Target,
    stop: CancellationToken,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Forwarder {
    /// Listens on `127.0.0.1:node_port`.
    pub async fn start(
        node_port: u16,
        target: Target,
        endpoints: Endpoints,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", node_port)).await?;
        let stop = CancellationToken::new();
        let t = target.clone();
        let s = stop.clone();
        tokio::spawn(async move {
            loop {
                let conn = tokio::select! {
                    _ = s.cancelled() => return,
                    c = listener.accept() => c,
                };
                let Ok((mut inbound, _)) = conn else { continue };
                let backend = endpoints.resolve(&t.namespace, &t.selector, &t.port);
                let s = s.clone();
                tokio::spawn(async move {
                    // No ready backend: the connection is closed, as kube-proxy rejects it.
                    let Some(port) = backend else { return };
                    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", port)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = s.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        Ok(Self { target, stop })
    }
}
