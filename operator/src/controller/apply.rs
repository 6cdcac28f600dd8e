//! Server-side apply under one field manager, skipped when the child already carries the hash
//! of exactly what we would apply and nobody changed it since (see [`super::drift`]): a settled
//! fleet makes no writes, and a hand edit is put back.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::context::{Context, FIELD_MANAGER};
use super::drift::Seen;
use super::error::Cause;

/// Annotation holding the hash of the last applied configuration.
pub const APPLIED_HASH_ANNOTATION: &str = "atfleet.dev/applied-hash";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Unchanged,
    Written,
    /// Written because someone had changed the child.
    Corrected,
}

/// The hash an applied object carries: of its whole serialized desired state.
pub fn hash_of<K: Serialize>(desired: &K) -> Result<String, Cause> {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(desired)?);
    Ok(hex::encode(&h.finalize()[..12]))
}

/// Applies `desired` unless `existing` already has its hash; returns the object as it now is.
pub async fn apply<K>(
    api: &Api<K>,
    ctx: &Context,
    mut desired: K,
    existing: Option<K>,
) -> Result<(K, Applied), Cause>
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
{
    let hash = hash_of(&desired)?;
    let mut outcome = Applied::Written;
    if let Some(existing) = existing {
        if existing.annotations().get(APPLIED_HASH_ANNOTATION) == Some(&hash)
            && existing.meta().deletion_timestamp.is_none()
        {
            match ctx.drift.check(&existing) {
                Seen::Same | Seen::Unknown => return Ok((existing, Applied::Unchanged)),
                Seen::Drifted => {
                    tracing::info!(kind = kind_of(&desired), name = %existing.name_any(), "re-applying a child changed by hand");
                    ctx.metrics.drift_corrected(kind_of(&desired));
                    outcome = Applied::Corrected;
                }
            }
        }
    }
    desired
        .annotations_mut()
        .insert(APPLIED_HASH_ANNOTATION.to_owned(), hash);
    let name = desired.name_any();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let written = api.patch(&name, &params, &Patch::Apply(&desired)).await?;
    ctx.drift.remember(&written);
    Ok((written, outcome))
}

/// The kind of an object, as it serializes (typed objects and dynamic ones alike).
fn kind_of<K: Serialize>(object: &K) -> &'static str {
    let kind = serde_json::to_value(object)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned));
    // A closed set, so the metric's label values stay bounded.
    match kind.as_deref() {
        Some("StatefulSet") => "StatefulSet",
        Some("Service") => "Service",
        Some("Secret") => "Secret",
        Some("ConfigMap") => "ConfigMap",
        Some("PersistentVolumeClaim") => "PersistentVolumeClaim",
        Some("Certificate") => "Certificate",
        Some("TLSRoute") => "TLSRoute",
        _ => "Other",
    }
}
