//! The checked-in CRDs under `crds/` must match what the Rust types generate.

use std::path::PathBuf;

#[test]
fn checked_in_crds_are_current() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds");
    let mut stale = Vec::new();
    for (file, generated) in atfleet_operator::crd::manifests().expect("CRDs render") {
        let path = dir.join(file);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        if on_disk != generated {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale CRD manifests: {stale:?}; run `cargo run -p atfleet-operator --bin crdgen` and commit crds/"
    );
}

#[test]
fn atsign_crd_has_columns_short_name_and_status() {
    use kube::CustomResourceExt;
    let crd = atfleet_operator::crd::Atsign::crd();
    assert_eq!(crd.spec.group, "atfleet.dev");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(
        crd.spec.names.short_names.as_deref(),
        Some(&["ats".to_owned()][..])
    );
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    let columns: Vec<_> = version
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    for column in ["Ready", "Endpoint", "Phase", "CertExpiry", "Age"] {
        assert!(
            columns.contains(&column),
            "missing column {column}: {columns:?}"
        );
    }
    assert!(version
        .subresources
        .as_ref()
        .and_then(|s| s.status.as_ref())
        .is_some());
    let class = atfleet_operator::crd::AtServerClass::crd();
    assert_eq!(class.spec.scope, "Cluster");
}
