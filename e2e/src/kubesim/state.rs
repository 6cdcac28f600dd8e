//! Everything behind the server's one lock: the object store and the served resource types.

use serde_json::{json, Value};

use super::resources::{GroupResource, Registry};
use super::store::Store;

pub struct State {
    pub store: Store,
    pub registry: Registry,
}

/// Namespaces every cluster has; `default` and `kube-system` cannot be deleted.
pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

pub fn namespaces() -> GroupResource {
    GroupResource {
        group: String::new(),
        resource: "namespaces".into(),
    }
}

pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl State {
    pub fn new(history_limit: usize) -> Self {
        let mut store = Store::new(history_limit);
        for ns in SYSTEM_NAMESPACES {
            let object = json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "uid": uuid::Uuid::new_v4().to_string(), "creationTimestamp": now(),
                             "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            });
            store.put(&namespaces(), (String::new(), ns.into()), object);
        }
        Self {
            store,
            registry: Registry::default(),
        }
    }

    pub fn namespace(&self, name: &str) -> Option<&Value> {
        self.store
            .get(&namespaces(), &(String::new(), name.to_string()))
    }
}
