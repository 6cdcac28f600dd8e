//! The one control plane a test run shares (`scripts/with-controlplane` starts it and exports
//! where it is). Tests isolate themselves by namespace: every test makes its own.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::PostParams;
use kube::Api;
use rand::Rng;
use serde_json::json;

use crate::{kubeconfig, ClusterError};

/// The label that tells the node agent to report a namespace's pods Ready without running them.
pub const SIMULATE_LABEL: &str = "node-agent.atfleet.dev/simulate";
/// The label every namespace made by [`SharedCluster::namespace`] carries.
pub const TEST_LABEL: &str = "atfleet.dev/test";

/// The environment variable naming the shared cluster's admin kubeconfig.
pub const KUBECONFIG_ENV: &str = "ATFLEET_KUBECONFIG";
/// The environment variable naming the shared cluster's state directory.
pub const STATE_ENV: &str = "ATFLEET_CLUSTER_STATE";

#[derive(Debug, Clone)]
pub struct SharedCluster {
    /// Admin (cluster-admin) kubeconfig.
    pub kubeconfig: PathBuf,
    /// State directory: `pki/ca.crt`, `logs/`, the node agent's files.
    pub state_dir: PathBuf,
}

impl SharedCluster {
    /// The cluster named by `ATFLEET_KUBECONFIG` and `ATFLEET_CLUSTER_STATE`.
    pub fn from_env() -> Result<Self, ClusterError> {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .ok_or_else(|| {
                    ClusterError::Environment(format!(
                        "{name} is not set: run the tests under scripts/with-controlplane \
                         (make test does), which starts the Kubernetes control plane and the node agent"
                    ))
                })
        };
        Ok(Self {
            kubeconfig: var(KUBECONFIG_ENV)?,
            state_dir: var(STATE_ENV)?,
        })
    }

    /// The cluster CA's certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.state_dir.join("pki/ca.crt")
    }

    /// A cluster-admin client.
    pub async fn client(&self) -> Result<kube::Client, ClusterError> {
        kubeconfig::client(&self.kubeconfig).await
    }

    /// The apiserver's URL, from the admin kubeconfig.
    pub fn server(&self) -> Result<String, ClusterError> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
        kc.clusters
            .first()
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.server.clone())
            .ok_or_else(|| ClusterError::Kubeconfig("no cluster server".into()))
    }

    /// Creates a namespace `<prefix>-<random>` for one test; with `simulate`, the node agent
    /// reports its pods Ready without running them.
    pub async fn namespace(
        &self,
        client: &kube::Client,
        prefix: &str,
        simulate: bool,
    ) -> Result<String, ClusterError> {
        let suffix: u32 = rand::thread_rng().gen();
        let name = format!("{prefix}-{suffix:08x}");
        let mut labels = json!({ TEST_LABEL: "true" });
        if simulate {
            labels[SIMULATE_LABEL] = json!("true");
        }
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": { "name": name, "labels": labels }
        }))
        .map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        Ok(name)
    }
}
