//! The data volume's claim, as the Apply step changes it: what the apiserver would refuse is kept
//! as it is, and a claim older than its Atsign is said to be inherited.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimSpec};
use kube::ResourceExt;

use crate::crd::Atsign;

/// A PVC's storage class cannot change and its size cannot shrink: keep what exists, and say
/// why when the spec asked for less.
pub fn keep_immutables(
    mut desired: PersistentVolumeClaim,
    existing: Option<&PersistentVolumeClaim>,
) -> (PersistentVolumeClaim, Option<String>) {
    let Some(current) = existing.and_then(|p| p.spec.as_ref()) else {
        return (desired, None);
    };
    if let Some(spec) = desired.spec.as_mut() {
        spec.storage_class_name = current.storage_class_name.clone();
        if let (Some(want), Some(have)) = (size(spec), size(current)) {
            if crate::quantity::bytes(&want) < crate::quantity::bytes(&have) {
                if let Some(req) = spec.resources.as_mut().and_then(|r| r.requests.as_mut()) {
                    req.insert("storage".into(), have.clone());
                }
                return (
                    desired,
                    Some(format!(
                        "the volume cannot shrink from {} to {}: it keeps {}",
                        have.0, want.0, have.0
                    )),
                );
            }
        }
    }
    (desired, None)
}

fn size(
    s: &PersistentVolumeClaimSpec,
) -> Option<k8s_openapi::apimachinery::pkg::api::resource::Quantity> {
    s.resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")
        .cloned()
}

/// Said when an Atsign finds a data volume older than itself (a Retain class kept it after an
/// earlier Atsign of that name was deleted): its atServer starts on that store and its keys.
pub fn inherited_note(atsign: &Atsign, pvc: Option<&PersistentVolumeClaim>) -> Option<String> {
    let claimed = pvc?.metadata.creation_timestamp.as_ref()?;
    let born = atsign.metadata.creation_timestamp.as_ref()?;
    (claimed.0 < born.0).then(|| {
        format!(
            "the data volume {} was kept from an earlier Atsign of this name (created {}): this \
             atServer starts on that store, keys included, so onboard with the keys file that \
             belongs to it; delete the claim first to start empty",
            pvc.map(|p| p.name_any()).unwrap_or_default(),
            claimed.0
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::VolumeResourceRequirements;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn pvc(size: &str, class: Option<&str>) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            spec: Some(PersistentVolumeClaimSpec {
                storage_class_name: class.map(str::to_owned),
                resources: Some(VolumeResourceRequirements {
                    requests: Some([("storage".to_owned(), Quantity(size.into()))].into()),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            ..PersistentVolumeClaim::default()
        }
    }

    fn size_of(p: &PersistentVolumeClaim) -> Option<String> {
        p.spec.as_ref().and_then(size).map(|q| q.0)
    }

    #[test]
    fn claims_grow_but_never_shrink_or_change_class() {
        let existing = pvc("2Gi", Some("fast"));
        let (grown, refused) = keep_immutables(pvc("3Gi", Some("slow")), Some(&existing));
        assert_eq!(refused, None);
        assert_eq!(size_of(&grown).as_deref(), Some("3Gi"));
        assert_eq!(
            grown
                .spec
                .as_ref()
                .and_then(|s| s.storage_class_name.as_deref()),
            Some("fast")
        );
        let (shrunk, refused) = keep_immutables(pvc("1Gi", None), Some(&existing));
        assert_eq!(size_of(&shrunk).as_deref(), Some("2Gi"));
        assert_eq!(
            refused.as_deref(),
            Some("the volume cannot shrink from 2Gi to 1Gi: it keeps 2Gi")
        );
        let (fresh, refused) = keep_immutables(pvc("1Gi", None), None);
        assert_eq!(size_of(&fresh).as_deref(), Some("1Gi"));
        assert_eq!(refused, None);
    }
}
