//! Pods a StatefulSet wants: names, the pod made from the template, and template revisions.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// Label carrying the template revision a pod was made from (as the real controller does).
pub const REVISION_LABEL: &str = "controller-revision-hash";
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";

/// A stable name for the StatefulSet's current pod template: `<sts>-<fnv64 of the template>`.
pub fn revision(sts: &StatefulSet) -> String {
    let template = serde_json::to_string(&sts.spec.template).unwrap_or_default();
    // FNV-1a: stable across runs and Rust versions, unlike std's hasher.
    let hash = template.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}-{:x}", sts.metadata.name.as_deref().unwrap_or(""), hash)
}

pub fn desired_replicas(sts: &StatefulSet) -> i32 {
    sts.spec.replicas.unwrap_or(1).max(0)
}

/// `web-3` → 3 when the pod belongs to StatefulSet `web`.
pub fn ordinal(sts_name: &str, pod_name: &str) -> Option<i32> {
    pod_name
        .strip_prefix(sts_name)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

/// Whether `pod` is controlled by `sts` (by uid).
pub fn owned_by(pod: &Pod, sts: &StatefulSet) -> bool {
    let Some(uid) = sts.metadata.uid.as_deref() else {
        return false;
    };
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.controller == Some(true))
}

/// The pod `<sts>-<ordinal>` from the template, scheduled to `node`.
pub fn pod_for(sts: &StatefulSet, ordinal: i32, node: &str) -> Option<Pod> {
    let name = sts.metadata.name.clone()?;
    let uid = sts.metadata.uid.clone()?;
    let template = sts.spec.template.clone();
    let template_meta = template.metadata.unwrap_or_default();
    let pod_name = format!("{name}-{ordinal}");
    let mut labels: BTreeMap<String, String> = template_meta.labels.unwrap_or_default();
    labels.insert(REVISION_LABEL.into(), revision(sts));
    labels.insert(POD_NAME_LABEL.into(), pod_name.clone());
    let mut spec = template.spec.unwrap_or_default();
    spec.node_name = Some(node.to_owned());
    spec.hostname = Some(pod_name.clone());
    spec.subdomain = sts.spec.service_name.clone();
    Some(Pod {
        metadata: ObjectMeta {
            name: Some(pod_name),
            namespace: sts.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: template_meta.annotations,
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "StatefulSet".into(),
                name,
                uid,
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sts() -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "alice", "namespace": "fleet", "uid": "u1"},
            "spec": {"replicas": 2, "serviceName": "alice", "selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}, "annotations": {"x": "y"}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}}
        }))
        .expect("sts")
    }

    #[test]
    fn pod_from_template() {
        let s = sts();
        let pod = pod_for(&s, 1, "local").expect("pod");
        assert_eq!(pod.metadata.name.as_deref(), Some("alice-1"));
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(labels.get(REVISION_LABEL), Some(&revision(&s)));
        assert!(owned_by(&pod, &s));
        assert_eq!(pod.spec.and_then(|p| p.node_name).as_deref(), Some("local"));
        assert_eq!(ordinal("alice", "alice-1"), Some(1));
        assert_eq!(ordinal("alice", "alice-x"), None);
        assert_eq!(ordinal("ali", "alice-1"), None);
        assert_eq!(desired_replicas(&s), 2);
    }

    #[test]
    fn revision_follows_the_template() {
        let a = sts();
        let mut b = sts();
        assert_eq!(revision(&a), revision(&b));
        b.spec.template.metadata = None;
        assert_ne!(revision(&a), revision(&b));
    }
}
