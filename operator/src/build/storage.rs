//! The data volume claim, owned apart from the StatefulSet so it can be resized and retained.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};

use super::names::pvc_name;
use super::object::meta;
use crate::resolve::Resolved;

pub fn pvc(r: &Resolved) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: meta(pvc_name(&r.name), r, None),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: r.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    r.storage_size.clone(),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}
