//! Kubeconfig files for the components, the admin and the tests, and clients built from them.

use std::path::Path;

use serde_json::json;

use crate::{ClusterError, Pair};

/// One cluster, one user, one context, all named `atfleet`.
pub struct Kubeconfig {
    doc: serde_json::Value,
}

impl Kubeconfig {
    fn with_user(server: &str, ca: &Path, user: serde_json::Value) -> Self {
        let doc = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{ "name": "atfleet", "cluster": {
                "server": server, "certificate-authority": ca.display().to_string() } }],
            "users": [{ "name": "atfleet", "user": user }],
            "contexts": [{ "name": "atfleet", "context": { "cluster": "atfleet", "user": "atfleet" } }],
            "current-context": "atfleet",
        });
        Self { doc }
    }

    /// Authenticates with a client certificate (`_who` names it for readers of the code).
    pub fn client_certificate(server: &str, ca: &Path, pair: &Pair, _who: &str) -> Self {
        Self::with_user(
            server,
            ca,
            json!({ "client-certificate": pair.cert.display().to_string(),
                    "client-key": pair.key.display().to_string() }),
        )
    }

    /// Authenticates with a bearer token (a ServiceAccount's, from the TokenRequest API).
    pub fn token(server: &str, ca: &Path, token: &str) -> Self {
        Self::with_user(server, ca, json!({ "token": token }))
    }

    /// A client for it.
    pub async fn client(&self) -> Result<kube::Client, ClusterError> {
        let kubeconfig: kube::config::Kubeconfig = serde_json::from_value(self.doc.clone())
            .map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
        Ok(kube::Client::try_from(config)?)
    }

    /// Writes it as YAML (JSON is YAML, but kubectl users read these files).
    pub fn write(&self, path: &Path) -> Result<(), ClusterError> {
        let yaml = serde_yaml::to_string(&self.doc)
            .map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
        std::fs::write(path, yaml).map_err(ClusterError::io(path))
    }
}

/// A client for the kubeconfig at `path` (its current context).
pub async fn client(path: &Path) -> Result<kube::Client, ClusterError> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .map_err(|e| ClusterError::Kubeconfig(format!("{}: {e}", path.display())))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| ClusterError::Kubeconfig(format!("{}: {e}", path.display())))?;
    Ok(kube::Client::try_from(config)?)
}
