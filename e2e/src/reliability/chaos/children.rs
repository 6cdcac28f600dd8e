//! The Atsigns' children as the API holds them: counted per owning Atsign (duplicates), and
//! whatever is left in the namespace after every Atsign is gone.

use std::collections::HashMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DynamicObject, ListParams};
use kube::{Api, Resource, ResourceExt};

use crate::reliability::error::ReliabilityError;

fn kube_err(e: kube::Error) -> ReliabilityError {
    ReliabilityError::Setup(format!("kubernetes API: {e}"))
}

/// How many objects each Atsign (by uid) controls.
fn controlled_by_atsign<'a>(metas: impl Iterator<Item = &'a ObjectMeta>) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for meta in metas {
        for owner in meta.owner_references.iter().flatten() {
            if owner.kind == "Atsign" && owner.controller == Some(true) {
                *counts.entry(owner.uid.clone()).or_insert(0) += 1;
            }
        }
    }
    counts
}

async fn list<K>(client: &kube::Client, ns: &str) -> Result<Vec<K>, ReliabilityError>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    <K as Resource>::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    Ok(api
        .list(&ListParams::default())
        .await
        .map_err(kube_err)?
        .items)
}

/// Children beyond one StatefulSet and one Service per Atsign (each with a message), and Atsigns
/// missing either.
pub async fn duplicates(
    client: &kube::Client,
    ns: &str,
    atsigns: &[DynamicObject],
) -> Result<(u64, Vec<String>), ReliabilityError> {
    let sets = list::<StatefulSet>(client, ns).await?;
    let services = list::<Service>(client, ns).await?;
    let by_kind = [
        (
            "StatefulSet",
            controlled_by_atsign(sets.iter().map(|s| &s.metadata)),
        ),
        (
            "Service",
            controlled_by_atsign(services.iter().map(|s| &s.metadata)),
        ),
    ];
    let mut extra = 0;
    let mut problems = Vec::new();
    for a in atsigns {
        let uid = a.uid().unwrap_or_default();
        for (kind, counts) in &by_kind {
            match counts.get(&uid).copied().unwrap_or(0) {
                1 => {}
                0 => problems.push(format!("Atsign {} has no {kind}", a.name_any())),
                n => {
                    extra += n - 1;
                    problems.push(format!("Atsign {} controls {n} {kind}s", a.name_any()));
                }
            }
        }
    }
    Ok((extra, problems))
}

/// Every StatefulSet, Service, Secret, PVC and Pod still in `ns` (`Kind/name`).
pub async fn remaining(client: &kube::Client, ns: &str) -> Result<Vec<String>, ReliabilityError> {
    let mut left = Vec::new();
    let mut add = |kind: &str, names: Vec<String>| {
        left.extend(names.into_iter().map(|n| format!("{kind}/{n}")));
    };
    let names = |metas: Vec<&ObjectMeta>| -> Vec<String> {
        metas.iter().filter_map(|m| m.name.clone()).collect()
    };
    let sets = list::<StatefulSet>(client, ns).await?;
    add(
        "StatefulSet",
        names(sets.iter().map(|o| &o.metadata).collect()),
    );
    let services = list::<Service>(client, ns).await?;
    add(
        "Service",
        names(services.iter().map(|o| &o.metadata).collect()),
    );
    let secrets = list::<Secret>(client, ns).await?;
    add(
        "Secret",
        names(secrets.iter().map(|o| &o.metadata).collect()),
    );
    let claims = list::<PersistentVolumeClaim>(client, ns).await?;
    add(
        "PersistentVolumeClaim",
        names(claims.iter().map(|o| &o.metadata).collect()),
    );
    let pods = list::<Pod>(client, ns).await?;
    add("Pod", names(pods.iter().map(|o| &o.metadata).collect()));
    Ok(left)
}
