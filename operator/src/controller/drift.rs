//! Drift: a child changed by hand (`kubectl edit` of the StatefulSet's image, a Service's type)
//! still carries the hash of what the operator last applied, so the hash alone would skip the
//! apply forever. Each child's observed content (everything but metadata and status, plus its
//! labels) is digested and remembered after every apply; a child whose digest moved since is
//! applied again. After a restart the first digest seen is taken as the baseline.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Annotation on a cached copy only (never written to the API): the digest of a StatefulSet
/// taken before the cache dropped its pod template.
pub const OBSERVED_DIGEST_ANNOTATION: &str = "atfleet.dev/observed-digest";

/// The digest of what a child holds: its labels and everything outside metadata and status.
pub fn observed_digest<K: Resource + Serialize>(object: &K) -> String {
    if let Some(d) = object.annotations().get(OBSERVED_DIGEST_ANNOTATION) {
        return d.clone();
    }
    let mut value = serde_json::to_value(object).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
        map.remove("metadata");
        map.insert(
            "labels".into(),
            serde_json::to_value(object.labels()).unwrap_or_default(),
        );
    }
    let mut h = Sha256::new();
    h.update(value.to_string().as_bytes());
    hex::encode(&h.finalize()[..12])
}

/// Records the digest of a StatefulSet on its cached copy before the template is dropped.
pub fn stamp_statefulset(sts: &mut StatefulSet) {
    let digest = observed_digest(&*sts);
    sts.annotations_mut()
        .insert(OBSERVED_DIGEST_ANNOTATION.to_owned(), digest);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// As the operator left it.
    Same,
    /// Not seen since this operator started.
    Unknown,
    /// Changed by someone else.
    Drifted,
}

/// The digest of each child as the operator last left it, keyed by the child's uid (a child
/// deleted and made again is a new one).
#[derive(Default)]
pub struct DriftMemory(Mutex<HashMap<String, String>>);

fn key<K: Resource>(object: &K) -> String {
    object.uid().unwrap_or_else(|| {
        format!(
            "{}/{}",
            object.namespace().unwrap_or_default(),
            object.name_any()
        )
    })
}

impl DriftMemory {
    /// Compares `existing` with what the operator left; an unknown child becomes the baseline.
    pub fn check<K: Resource + Serialize>(&self, existing: &K) -> Seen {
        let digest = observed_digest(existing);
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match seen.get(&key(existing)) {
            Some(d) if *d == digest => Seen::Same,
            Some(_) => Seen::Drifted,
            None => {
                seen.insert(key(existing), digest);
                Seen::Unknown
            }
        }
    }

    /// Remembers a child as the operator just wrote it.
    pub fn remember<K: Resource + Serialize>(&self, written: &K) {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        seen.insert(key(written), observed_digest(written));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn sts(image: &str, replicas: i32) -> StatefulSet {
        let mut s = StatefulSet::default();
        s.metadata.name = Some("alice".into());
        s.metadata.namespace = Some("fleet".into());
        s.metadata.uid = Some("u1".into());
        s.spec.replicas = Some(replicas);
        s.spec.template.spec = Some(PodSpec {
            containers: vec![Container {
                name: "atserver".into(),
                image: Some(image.into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        });
        s
    }

    #[test]
    fn a_hand_edit_is_drift_status_and_metadata_are_not() {
        let memory = DriftMemory::default();
        let ours = sts("atserver:1", 1);
        assert_eq!(memory.check(&ours), Seen::Unknown);
        assert_eq!(memory.check(&ours), Seen::Same);
        let mut touched = ours.clone();
        touched.metadata.resource_version = Some("42".into());
        touched.status = Some(Default::default());
        assert_eq!(memory.check(&touched), Seen::Same);
        assert_eq!(memory.check(&sts("atserver:evil", 1)), Seen::Drifted);
        memory.remember(&sts("atserver:2", 1));
        assert_eq!(memory.check(&sts("atserver:2", 1)), Seen::Same);
    }

    #[test]
    fn the_cached_stamp_stands_for_the_dropped_template() {
        let mut cached = sts("atserver:1", 1);
        let digest = observed_digest(&cached);
        stamp_statefulset(&mut cached);
        cached.spec.template = Default::default();
        assert_eq!(observed_digest(&cached), digest);
        assert_ne!(observed_digest(&sts("atserver:1", 2)), digest);
    }
}
