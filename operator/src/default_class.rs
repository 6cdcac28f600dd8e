//! The chart's default `AtServerClass`, applied by the operator rather than by Helm.
//!
//! Helm cannot create an object of a kind whose CRD is installed by the same release, so the chart
//! used to ship the class as a post-install/post-upgrade hook with `before-hook-creation`: every
//! upgrade deleted and recreated it, and every Atsign naming it briefly had no class. Instead the
//! chart renders the class into a ConfigMap (`--default-class-file`) and each operator replica
//! server-side applies it when it starts: the object is created once, updated in place when the
//! chart's values change, and never deleted (it outlives the release like the CRDs do).

use std::path::Path;
use std::time::Duration;

use kube::api::{Api, PatchParams};
use kube::ResourceExt;
use tokio_util::sync::CancellationToken;

use crate::crd::AtServerClass;

/// The field manager that owns the default class's fields (not the reconciler's).
pub const FIELD_MANAGER: &str = "atfleet-default-class";

#[derive(Debug, thiserror::Error)]
pub enum DefaultClassError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not an AtServerClass manifest: {source}")]
    Parse {
        path: String,
        source: serde_yaml::Error,
    },
    #[error("{path}: the manifest has no metadata.name")]
    NoName { path: String },
}

/// Reads the class manifest the chart rendered (apiVersion, kind, metadata.name, spec).
pub fn load(path: &Path) -> Result<AtServerClass, DefaultClassError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| DefaultClassError::Read {
        path: shown.clone(),
        source,
    })?;
    let class: AtServerClass =
        serde_yaml::from_str(&text).map_err(|source| DefaultClassError::Parse {
            path: shown.clone(),
            source,
        })?;
    if class.metadata.name.as_deref().unwrap_or("").is_empty() {
        return Err(DefaultClassError::NoName { path: shown });
    }
    Ok(class)
}

/// Applies `class` until the API server takes it or `shutdown` fires. At install time the CRD may
/// not be established yet, so failures are retried with a growing delay (1 s doubling to 30 s).
/// Returns whether the class was applied.
pub async fn apply_until_done(
    client: kube::Client,
    class: AtServerClass,
    shutdown: CancellationToken,
) -> bool {
    let api: Api<AtServerClass> = Api::all(client);
    let name = class.name_any();
    let mut manifest = class;
    // Server-side apply wants the type fields and no server-owned metadata.
    manifest.metadata.resource_version = None;
    manifest.metadata.uid = None;
    manifest.metadata.managed_fields = None;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut delay = Duration::from_secs(1);
    loop {
        match api
            .patch(&name, &params, &kube::api::Patch::Apply(&manifest))
            .await
        {
            Ok(applied) => {
                tracing::info!(
                    class = %name,
                    generation = applied.metadata.generation.unwrap_or(0),
                    "default AtServerClass applied (--default-class-file)"
                );
                return true;
            }
            Err(e) => {
                tracing::warn!(
                    class = %name,
                    error = %e,
                    retry_in_seconds = delay.as_secs(),
                    "cannot apply the default AtServerClass yet"
                );
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_a_rendered_class_and_refuses_what_is_not_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("class.yaml");
        std::fs::write(
            &good,
            "apiVersion: atfleet.dev/v1alpha1\nkind: AtServerClass\nmetadata:\n  name: standard\n\
             spec:\n  storage:\n    size: 1Gi\n    retention: Retain\n  exposure:\n    mode: ClusterIP\n",
        )
        .expect("write");
        let class = load(&good).expect("a valid class");
        assert_eq!(class.name_any(), "standard");
        assert_eq!(
            class.spec.storage.and_then(|s| s.size).map(|q| q.0),
            Some("1Gi".to_owned())
        );

        let nameless = dir.path().join("nameless.yaml");
        std::fs::write(
            &nameless,
            "apiVersion: atfleet.dev/v1alpha1\nkind: AtServerClass\nmetadata: {}\nspec: {}\n",
        )
        .expect("write");
        assert!(matches!(
            load(&nameless),
            Err(DefaultClassError::NoName { .. })
        ));

        let garbage = dir.path().join("garbage.yaml");
        std::fs::write(&garbage, "spec: [1, 2").expect("write");
        assert!(matches!(
            load(&garbage),
            Err(DefaultClassError::Parse { .. })
        ));
        assert!(matches!(
            load(&dir.path().join("missing.yaml")),
            Err(DefaultClassError::Read { .. })
        ));
    }
}
