//! The operator's identity as the chart gives it: the RBAC `helm template charts/atfleet
//! --show-only templates/operator-rbac.yaml` renders (applied unchanged), the ServiceAccount it
//! binds, and a token for that account from the TokenRequest API.

use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Api, ResourceExt};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::LocalError;

/// The repository's root (the chart and the scripts are read from there).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// helm: `HELM`, else `$ATFLEET_TOOLS_BIN/helm`, else the one `scripts/tools-env` installs
/// (from PyPI, once, into `~/.cache/atfleet-tools`).
pub fn helm() -> Result<PathBuf, LocalError> {
    if let Some(h) = std::env::var_os("HELM").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    if let Some(bin) = std::env::var_os("ATFLEET_TOOLS_BIN").filter(|b| !b.is_empty()) {
        return Ok(PathBuf::from(bin).join("helm"));
    }
    let script = repo_root().join("scripts/tools-env");
    let out = std::process::Command::new(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(LocalError::io(&script))?;
    if !out.status.success() {
        return Err(LocalError::Command {
            what: script.display().to_string(),
            message: format!("failed ({})", out.status),
        });
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("helm"))
}

/// The operator's ServiceAccount and a bearer token for it.
pub struct OperatorIdentity {
    pub service_account: String,
    pub token: String,
}

/// Renders the chart's operator RBAC for `release` in `system_ns`, applies it with `admin`,
/// creates the ServiceAccount it binds and asks the TokenRequest API for a token valid for
/// `expiration_seconds`.
pub async fn chart_identity(
    admin: &kube::Client,
    helm: &Path,
    release: &str,
    system_ns: &str,
    expiration_seconds: i64,
) -> Result<OperatorIdentity, LocalError> {
    let chart = repo_root().join("charts/atfleet");
    let out = tokio::process::Command::new(helm)
        .args(["template", release])
        .arg(&chart)
        .args(["--namespace", system_ns])
        .args(["--show-only", "templates/operator-rbac.yaml"])
        .output()
        .await
        .map_err(LocalError::io(helm))?;
    if !out.status.success() {
        return Err(LocalError::Command {
            what: "helm template (the chart's operator RBAC)".into(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut objects = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v = Value::deserialize(doc).map_err(|e| LocalError::Manifest(e.to_string()))?;
        if !v.is_null() {
            objects.push(v);
        }
    }
    let service_account = objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRoleBinding" || o["kind"] == "RoleBinding")
        .flat_map(|o| o["subjects"].as_array().cloned().unwrap_or_default())
        .find(|s| s["kind"] == "ServiceAccount")
        .and_then(|s| s["name"].as_str().map(str::to_owned))
        .ok_or_else(|| LocalError::Manifest("the rendered RBAC binds no ServiceAccount".into()))?;
    let pp = PatchParams::apply("atfleet-local").force();
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), system_ns);
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": service_account, "namespace": system_ns}});
    accounts
        .patch(&service_account, &pp, &Patch::Apply(&sa))
        .await?;
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", &kind),
            &format!("{}s", kind.to_lowercase()),
        );
        let obj: DynamicObject =
            serde_json::from_value(object).map_err(|e| LocalError::Manifest(e.to_string()))?;
        let api: Api<DynamicObject> = match obj.namespace() {
            Some(ns) => Api::namespaced_with(admin.clone(), &ns, &resource),
            None => Api::all_with(admin.clone(), &resource),
        };
        api.patch(&obj.name_any(), &pp, &Patch::Apply(&obj)).await?;
    }
    let request: TokenRequest = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": expiration_seconds}
    }))
    .map_err(|e| LocalError::Manifest(e.to_string()))?;
    let issued: TokenRequest = accounts
        .create_subresource("token", &service_account, &PostParams::default(), &request)
        .await?;
    let token = issued
        .status
        .and_then(|s| s.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| LocalError::Manifest("the TokenRequest returned no token".into()))?;
    Ok(OperatorIdentity {
        service_account,
        token,
    })
}
