//! Server-side apply under one field manager, skipped when the child already carries the hash
//! of exactly what we would apply: a settled fleet makes no writes.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Error, FIELD_MANAGER};

/// Annotation holding the hash of the last applied configuration.
pub const APPLIED_HASH_ANNOTATION: &str = "atfleet.dev/applied-hash";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Unchanged,
    Written,
}

/// The hash an applied object carries: of its whole serialized desired state.
pub fn hash_of<K: Serialize>(desired: &K) -> Result<String, Error> {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(desired)?);
    Ok(hex::encode(&h.finalize()[..12]))
}

/// Applies `desired` unless `existing` already has its hash; returns the object as it now is.
pub async fn apply<K>(
    api: &Api<K>,
    mut desired: K,
    existing: Option<K>,
) -> Result<(K, Applied), Error>
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
{
    let hash = hash_of(&desired)?;
    if let Some(existing) = existing {
        if existing.annotations().get(APPLIED_HASH_ANNOTATION) == Some(&hash)
            && existing.meta().deletion_timestamp.is_none()
        {
            return Ok((existing, Applied::Unchanged));
        }
    }
    desired
        .annotations_mut()
        .insert(APPLIED_HASH_ANNOTATION.to_owned(), hash);
    let name = desired.name_any();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let written = api.patch(&name, &params, &Patch::Apply(&desired)).await?;
    Ok((written, Applied::Written))
}
