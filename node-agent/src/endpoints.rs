//! Where each running pod's container ports are on the loopback interface, for NodePort forwarders.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

#[derive(Debug, Clone, Default)]
pub struct PodEndpoint {
    /// The pod's uid: a replaced pod of the same name does not remove its successor's entry.
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub ready: bool,
    /// (container port, port name, loopback port)
    pub ports: Vec<(i32, Option<String>, u16)>,
}

/// (namespace, pod name) → endpoint, and a signal for pods coming and going.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    map: Arc<Mutex<HashMap<(String, String), PodEndpoint>>>,
    changed: Arc<Notify>,
}

impl Endpoints {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), PodEndpoint>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves once a pod was added or removed since the last call.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Whether a pod of this agent in `ns` (ready or not) matches `selector`.
    pub fn selects_any(&self, ns: &str, selector: &BTreeMap<String, String>) -> bool {
        self.lock()
            .iter()
            .any(|((n, _), e)| n == ns && selector.iter().all(|(k, v)| e.labels.get(k) == Some(v)))
    }

    pub fn set(&self, ns: &str, pod: &str, endpoint: PodEndpoint) {
        self.lock().insert((ns.into(), pod.into()), endpoint);
        self.changed.notify_one();
    }

    pub fn update(&self, ns: &str, pod: &str, f: impl FnOnce(&mut PodEndpoint)) {
        if let Some(e) = self.lock().get_mut(&(ns.to_owned(), pod.to_owned())) {
            f(e);
        }
    }

    /// Removes the entry of pod `uid`.
    pub fn remove(&self, ns: &str, pod: &str, uid: &str) {
        let mut map = self.lock();
        let k = (ns.to_owned(), pod.to_owned());
        if map.get(&k).is_some_and(|e| e.uid == uid) {
            map.remove(&k);
            self.changed.notify_one();
        }
    }

    /// The loopback port of a ready pod in `ns` matching `selector`, for `target` (a port number
    /// or name), preferring the lowest pod name for stability.
    pub fn resolve(
        &self,
        ns: &str,
        selector: &BTreeMap<String, String>,
        target: &IntOrString,
    ) -> Option<u16> {
        let map = self.lock();
        let mut candidates: Vec<_> = map
            .iter()
            .filter(|((n, _), e)| {
                n == ns && e.ready && selector.iter().all(|(k, v)| e.labels.get(k) == Some(v))
            })
            .collect();
        candidates.sort_by(|a, b| a.0.cmp(b.0));
        candidates.into_iter().find_map(|(_, e)| {
            e.ports.iter().find_map(|(port, name, local)| {
                let hit = match target {
                    IntOrString::Int(n) => port == n,
                    IntOrString::String(s) => name.as_deref() == Some(s.as_str()),
                };
                hit.then_some(*local)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_ready_matching_pods() {
        let e = Endpoints::default();
        let labels = BTreeMap::from([("app".to_owned(), "a".to_owned())]);
        e.set(
            "ns",
            "a-0",
            PodEndpoint {
                uid: "u1".into(),
                labels: labels.clone(),
                ready: false,
                ports: vec![(6464, Some("atprotocol".into()), 40000)],
            },
        );
        assert!(e.selects_any("ns", &labels));
        assert!(!e.selects_any("other", &labels));
        let named = IntOrString::String("atprotocol".into());
        assert_eq!(e.resolve("ns", &labels, &named), None);
        e.update("ns", "a-0", |p| p.ready = true);
        assert_eq!(e.resolve("ns", &labels, &named), Some(40000));
        assert_eq!(
            e.resolve("ns", &labels, &IntOrString::Int(6464)),
            Some(40000)
        );
        assert_eq!(e.resolve("other", &labels, &named), None);
        e.remove("ns", "a-0", "u0");
        assert_eq!(
            e.resolve("ns", &labels, &named),
            Some(40000),
            "another pod's uid"
        );
        e.remove("ns", "a-0", "u1");
        assert_eq!(e.resolve("ns", &labels, &named), None);
    }
}
