//! The local cluster itself: started in order, checked, and stopped in the reverse order.

use std::path::PathBuf;
use std::time::Duration;

use atfleet_cluster::process::Proc;
use atfleet_cluster::{ControlPlane, Kubeconfig};
use atfleet_node_agent::NodeAgent;

use super::error::LocalError;
use super::install::install;
use super::names::{RELEASE, SYSTEM_NAMESPACE};
use super::net::{free_port, wait_http};
use super::options::Options;
use super::pod_logs::{keep_pod_logs, link_pod_logs};
use super::state_dir::prepare_state_dir;
use super::{ca, identity, postgres};

pub struct LocalCluster {
    pub state_dir: PathBuf,
    pub bin_dir: PathBuf,
    /// The control plane's binaries (and its matching `kubectl`, when built).
    pub controlplane_bin: PathBuf,
    /// cluster-admin (for `kubectl`).
    pub kubeconfig: PathBuf,
    /// The operator's: its ServiceAccount token.
    pub operator_kubeconfig: PathBuf,
    /// `host:port` of the atDirectory's root protocol.
    pub root_server: String,
    /// The atDirectory's registration API.
    pub directory_url: String,
    /// The operator's built-in CA, which also issued the atDirectory's certificate.
    pub ca_bundle: PathBuf,
    /// cluster-admin.
    pub client: kube::Client,
    /// Pod directories of the node agent: `pods/<ns>/<pod>-<uid>/<container>.log`.
    pub node_dir: PathBuf,
    /// Every pod log, hard-linked as it appears, so it outlives its pod (the node agent removes
    /// a pod's directory when the pod goes): `logs/pods/<ns>/<pod>-<uid>/<container>.log`.
    pub pod_logs: PathBuf,
    control_plane: Option<ControlPlane>,
    agent: Option<atfleet_node_agent::Handle>,
    directory: Option<Proc>,
    operator: Option<Proc>,
    postgres: Option<postgres::Postgres>,
    log_keeper: tokio::task::JoinHandle<()>,
}

impl LocalCluster {
    pub async fn up(opts: Options) -> Result<Self, LocalError> {
        let state = opts.state_dir.clone();
        prepare_state_dir(&state)?;
        let logs = state.join("logs");
        std::fs::create_dir_all(&logs).map_err(LocalError::io(&logs))?;
        let program = |name: &str| -> Result<PathBuf, LocalError> {
            let path = opts.bin_dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(LocalError::Command {
                    what: format!("finding {name}"),
                    message: format!(
                        "{} is missing: build it first (cargo build -p atserver -p atdirectory -p atfleet-operator -p atctl -p atfleet-e2e)",
                        path.display()
                    ),
                })
            }
        };
        for name in ["atserver", "atdirectory", "atfleet-operator"] {
            program(name)?;
        }
        let controlplane_bin = match &opts.controlplane_bin {
            Some(d) => d.clone(),
            None => atfleet_cluster::binaries()?,
        };
        let helm = match &opts.helm {
            Some(h) => h.clone(),
            None => identity::helm()?,
        };

        let postgres = match &opts.database_url {
            Some(url) => postgres::Postgres::database_in(url)?,
            None => postgres::Postgres::start_cluster(&state.join("postgres"))?,
        };

        let control_plane = ControlPlane::start(atfleet_cluster::Options::new(
            state.join("cluster"),
            &controlplane_bin,
        ))
        .await?;
        let kubeconfig = control_plane.admin_kubeconfig.clone();
        let client = control_plane.client().await?;
        install(&client).await?;

        let node_dir = state.join("node");
        let mut agent_config = atfleet_node_agent::Config::processes(&node_dir, &opts.bin_dir);
        agent_config.api_server = Some(control_plane.server.clone());
        // `kubectl logs` asks the apiserver, which asks the node's kubelet port.
        agent_config.kubelet_port = Some(0);
        let agent = NodeAgent::start(client.clone(), agent_config)
            .await
            .map_err(|e| LocalError::Command {
                what: "node agent".into(),
                message: e.to_string(),
            })?;
        let pod_logs = logs.join("pods");
        let log_keeper = tokio::spawn(keep_pod_logs(node_dir.join("pods"), pod_logs.clone()));

        let tls = ca::install(&client, &state).await?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        let token_file = state.join("directory-token");
        std::fs::write(&token_file, &token).map_err(LocalError::io(&token_file))?;
        let (root_port, dir_http) = (free_port()?, free_port()?);
        let mut directory = Proc::spawn(
            "atdirectory",
            &program("atdirectory")?,
            &[
                "--listen".into(),
                format!("127.0.0.1:{root_port}"),
                "--http-listen".into(),
                format!("127.0.0.1:{dir_http}"),
                "--tls-cert".into(),
                tls.cert.display().to_string(),
                "--tls-key".into(),
                tls.key.display().to_string(),
                "--database-url".into(),
                postgres.url.clone(),
                "--api-token-file".into(),
                token_file.display().to_string(),
                // A deleted registration must be forgotten at once, not after a cached minute.
                "--cache-ttl-ms".into(),
                "1000".into(),
                "--negative-ttl-ms".into(),
                "500".into(),
            ],
            &[],
            &logs,
        )?;
        let directory_url = format!("http://127.0.0.1:{dir_http}");
        wait_http(&format!("{directory_url}/readyz"), &mut directory).await?;

        // The operator as the chart runs it: its ServiceAccount, the chart's RBAC. The token
        // lasts a week (a kept cluster outlives an hour).
        let id =
            identity::chart_identity(&client, &helm, RELEASE, SYSTEM_NAMESPACE, 7 * 86_400).await?;
        let operator_kubeconfig = state.join("operator.kubeconfig");
        Kubeconfig::token(&control_plane.server, &control_plane.ca_cert, &id.token)
            .write(&operator_kubeconfig)?;
        let op_http = free_port()?;
        let mut operator = Proc::spawn(
            "atfleet-operator",
            &program("atfleet-operator")?,
            &[
                "--directory-url".into(),
                directory_url.clone(),
                "--directory-token-file".into(),
                token_file.display().to_string(),
                "--root-server".into(),
                format!("127.0.0.1:{root_port}"),
                "--http-listen".into(),
                format!("127.0.0.1:{op_http}"),
                "--namespace".into(),
                SYSTEM_NAMESPACE.into(),
                "--identity".into(),
                "atfleet-local".into(),
            ],
            &[
                ("KUBECONFIG", operator_kubeconfig.display().to_string()),
                (
                    "RUST_LOG",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
                ),
            ],
            &logs,
        )?;
        wait_http(
            &format!("http://127.0.0.1:{op_http}/healthz"),
            &mut operator,
        )
        .await?;

        Ok(Self {
            state_dir: state,
            bin_dir: opts.bin_dir,
            controlplane_bin,
            kubeconfig,
            operator_kubeconfig,
            root_server: format!("127.0.0.1:{root_port}"),
            directory_url,
            ca_bundle: tls.ca,
            client,
            node_dir,
            pod_logs,
            control_plane: Some(control_plane),
            agent: Some(agent),
            directory: Some(directory),
            operator: Some(operator),
            postgres: Some(postgres),
            log_keeper,
        })
    }

    /// The `kubectl` built with the control plane, when it is there.
    pub fn kubectl(&self) -> Option<PathBuf> {
        Some(self.controlplane_bin.join("kubectl")).filter(|k| k.is_file())
    }

    /// Fails when the atDirectory, the operator or a control-plane component has exited.
    pub fn check(&mut self) -> Result<(), LocalError> {
        for p in [&mut self.directory, &mut self.operator]
            .into_iter()
            .flatten()
        {
            p.check_running()?;
        }
        if let Some(cp) = self.control_plane.as_mut() {
            cp.check_running()?;
        }
        Ok(())
    }

    /// Environment for `kubectl` and `atctl` against this cluster.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KUBECONFIG", self.kubeconfig.display().to_string()),
            ("ATCTL_ROOT_SERVER", self.root_server.clone()),
            ("ATCTL_CA_BUNDLE", self.ca_bundle.display().to_string()),
        ]
    }

    /// Stops the operator first (so it does not react to pods going away), then the pods (the
    /// node agent), the atDirectory, the control plane and PostgreSQL. Returns one line per
    /// stopped part, in order.
    pub async fn shutdown(mut self) -> Vec<String> {
        let mut stopped = Vec::new();
        if let Some(p) = self.operator.take() {
            p.stop(Duration::from_secs(10)).await;
            stopped.push("the operator".to_owned());
        }
        if let Some(agent) = self.agent.take() {
            // Links the logs of pods that appeared since the last scan before they go.
            link_pod_logs(&self.node_dir.join("pods"), &self.pod_logs);
            // The agent marks its Node NotReady through the apiserver; never hang on that.
            match tokio::time::timeout(Duration::from_secs(60), agent.shutdown()).await {
                Ok(()) => stopped.push("the node agent and its pods' processes".to_owned()),
                Err(_) => stopped.push(
                    "the node agent (gave up waiting for it after 60 s; its pods' processes are killed with it)"
                        .to_owned(),
                ),
            }
        }
        self.log_keeper.abort();
        if let Some(p) = self.directory.take() {
            p.stop(Duration::from_secs(10)).await;
            stopped.push("the atDirectory".to_owned());
        }
        if let Some(cp) = self.control_plane.take() {
            cp.shutdown().await;
            stopped.push(
                "kube-scheduler, kube-controller-manager, kube-apiserver and etcd".to_owned(),
            );
        }
        if let Some(pg) = self.postgres.take() {
            drop(pg);
            stopped.push("PostgreSQL".to_owned());
        }
        stopped
    }
}
