//! kube-proxy's stand-in: one TCP forwarder per NodePort/LoadBalancer Service port on
//! `127.0.0.1:<nodePort>`, to a ready selected pod's loopback port. A forwarder exists only while
//! the Service selects a pod this agent runs, so several agents on one machine share the node
//! ports. ClusterIP Services are not reachable (processes share the host's network and no
//! cluster IPs are routed).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, ResourceExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::endpoints::Endpoints;
use super::forward::{Forwarder, Target};

type PortKey = (String, String, u16);

/// Keeps a forwarder per node port of the cluster's Services until `stop`.
pub async fn run(
    client: kube::Client,
    endpoints: Endpoints,
    resync: Duration,
    stop: CancellationToken,
) {
    let notify = Arc::new(Notify::new());
    let (reader, writer) = reflector::store::<Service>();
    let api: Api<Service> = Api::all(client);
    let stream =
        reflector::reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
    let (n, s) = (notify.clone(), stop.clone());
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                _ = s.cancelled() => return,
                ev = stream.next() => match ev {
                    Some(_) => n.notify_one(),
                    None => return,
                }
            }
        }
    });
    tokio::select! {
        _ = stop.cancelled() => return,
        _ = reader.wait_until_ready() => {}
    }
    let mut forwarders: HashMap<PortKey, Forwarder> = HashMap::new();
    let mut bind_failures: HashSet<PortKey> = HashSet::new();
    loop {
        sync(&reader, &endpoints, &mut forwarders, &mut bind_failures).await;
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = notify.notified() => {}
            _ = endpoints.changed() => {}
            _ = tokio::time::sleep(resync) => {}
        }
    }
}

/// The forwarders the Services ask for: (namespace, service, node port) → target.
fn wanted(services: &[Arc<Service>]) -> HashMap<PortKey, Target> {
    let mut wanted = HashMap::new();
    for svc in services {
        let Some(spec) = &svc.spec else { continue };
        if !matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer")) {
            continue;
        }
        let selector: BTreeMap<String, String> = spec.selector.clone().unwrap_or_default();
        if selector.is_empty() {
            continue;
        }
        for port in spec.ports.iter().flatten() {
            let Some(node_port) = port.node_port.and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            let target = Target {
                namespace: svc.namespace().unwrap_or_default(),
                selector: selector.clone(),
                port: port
                    .target_port
                    .clone()
                    .unwrap_or(IntOrString::Int(port.port)),
            };
            wanted.insert(
                (target.namespace.clone(), svc.name_any(), node_port),
                target,
            );
        }
    }
    wanted
}

async fn sync(
    services: &Store<Service>,
    endpoints: &Endpoints,
    forwarders: &mut HashMap<PortKey, Forwarder>,
    bind_failures: &mut HashSet<PortKey>,
) {
    let mut wanted = wanted(&services.state());
    wanted.retain(|_, t| endpoints.selects_any(&t.namespace, &t.selector));
    forwarders.retain(|k, f| wanted.get(k).is_some_and(|t| *t == f.target));
    bind_failures.retain(|k| wanted.contains_key(k));
    for (k, target) in wanted {
        if forwarders.contains_key(&k) {
            continue;
        }
        match Forwarder::start(k.2, target, endpoints.clone()).await {
            Ok(f) => {
                tracing::info!(service = %k.1, node_port = k.2, "forwarding 127.0.0.1:{}", k.2);
                bind_failures.remove(&k);
                forwarders.insert(k, f);
            }
            Err(e) => {
                if bind_failures.insert(k.clone()) {
                    tracing::warn!(service = %k.1, node_port = k.2, error = %e, "cannot listen on the node port");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn node_ports_only() {
        let svc =
            |v: serde_json::Value| Arc::new(serde_json::from_value::<Service>(v).expect("svc"));
        let services = vec![
            svc(
                json!({"metadata": {"name": "a", "namespace": "n"}, "spec": {
                "type": "NodePort", "selector": {"app": "a"},
                "ports": [{"port": 64, "targetPort": "atp", "nodePort": 30064}]}}),
            ),
            svc(
                json!({"metadata": {"name": "b", "namespace": "n"}, "spec": {
                "type": "ClusterIP", "selector": {"app": "b"}, "ports": [{"port": 80}]}}),
            ),
            svc(
                json!({"metadata": {"name": "c", "namespace": "n"}, "spec": {
                "type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}}),
            ),
        ];
        let w = wanted(&services);
        assert_eq!(w.len(), 1);
        let t = w.get(&("n".into(), "a".into(), 30064)).expect("a");
        assert_eq!(t.port, IntOrString::String("atp".into()));
    }
}
