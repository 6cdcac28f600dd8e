//! The local cluster: a throwaway PostgreSQL, the upstream control plane (etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler; `atfleet-cluster`), the node agent running pods as
//! processes, the atDirectory and the operator on this machine, with the CRDs and an
//! `AtServerClass` named `local` installed (NodePort exposure published as 127.0.0.1). The
//! operator authenticates as its own ServiceAccount under the RBAC the chart renders. `kubectl`
//! and `atctl` work against it through the files in its state directory.

mod ca;
pub mod identity;
pub(crate) mod postgres;

use std::path::{Path, PathBuf};
use std::time::Duration;

use atfleet_cluster::{ClusterError, ControlPlane, Kubeconfig};
use atfleet_node_agent::NodeAgent;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Api;
use serde_json::json;

pub use atfleet_cluster::process::Proc;

/// The operator's namespace, where its CA Secret lives.
pub const SYSTEM_NAMESPACE: &str = "atfleet-system";
/// The namespace the demo's Atsigns live in.
pub const NAMESPACE: &str = "fleet";
/// The installed class.
pub const CLASS: &str = "local";
/// The Helm release name the operator's RBAC is rendered for.
pub const RELEASE: &str = "atfleet";

const CRDS: [&str; 2] = [
    include_str!("../../../crds/atsign.yaml"),
    include_str!("../../../crds/atserverclass.yaml"),
];

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {message}")]
    Command { what: String, message: String },
    #[error("certificates: {0}")]
    Pki(String),
    #[error("control plane: {0}")]
    Cluster(#[from] ClusterError),
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("bad manifest: {0}")]
    Manifest(String),
}

impl LocalError {
    pub(crate) fn io(path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> LocalError {
        let path = path.as_ref().to_path_buf();
        move |source| LocalError::Io { path, source }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Where files, logs, pod directories and volumes go (created if absent).
    pub state_dir: PathBuf,
    /// Where `atdirectory`, `atfleet-operator`, `atserver` and `atctl` are.
    pub bin_dir: PathBuf,
    /// Where etcd, kube-apiserver, kube-controller-manager, kube-scheduler (and kubectl) are;
    /// `None`: [`atfleet_cluster::binaries`] (built once by `scripts/controlplane-build`).
    pub controlplane_bin: Option<PathBuf>,
    /// Create a database in this server instead of starting a PostgreSQL cluster.
    pub database_url: Option<String>,
    /// helm, to render the chart's RBAC; `None`: [`identity::helm`].
    pub helm: Option<PathBuf>,
}

impl Options {
    pub fn new(state_dir: impl Into<PathBuf>, bin_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            bin_dir: bin_dir.into(),
            controlplane_bin: None,
            database_url: None,
            helm: None,
        }
    }
}

/// The target directory's `debug/` (or `release/`) holding the binaries, from the running
/// executable (a test executable lives one level down, in `deps/`).
pub fn bin_dir_of_current_exe() -> Result<PathBuf, LocalError> {
    let exe = std::env::current_exe().map_err(LocalError::io("current executable"))?;
    let mut dir = exe
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    Ok(dir)
}

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

/// Hard-links every pod log under `pods` (`<ns>/<pod>-<uid>/<container>.log`) into `keep` once a
/// second: the link keeps the file (and what the process still writes to it) when the node
/// agent removes the pod's directory.
async fn keep_pod_logs(pods: PathBuf, keep: PathBuf) {
    loop {
        link_pod_logs(&pods, &keep);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn link_pod_logs(pods: &Path, keep: &Path) {
    let dirs = |p: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    for ns in dirs(pods) {
        for pod in dirs(&ns) {
            for file in dirs(&pod) {
                if file.extension().is_none_or(|e| e != "log") || !file.is_file() {
                    continue;
                }
                let (Some(n), Some(p), Some(f)) =
                    (ns.file_name(), pod.file_name(), file.file_name())
                else {
                    continue;
                };
                let target = keep.join(n).join(p).join(f);
                if target.exists() {
                    continue;
                }
                if let Some(parent) = target.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                if std::fs::hard_link(&file, &target).is_err() {
                    let _ = std::fs::copy(&file, &target);
                }
            }
        }
    }
}

/// The CRDs, the namespaces and the `local` class.
async fn install(client: &kube::Client) -> Result<(), LocalError> {
    let pp = PatchParams::apply("atfleet-local").force();
    for doc in CRDS {
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(doc).map_err(|e| LocalError::Manifest(e.to_string()))?;
        atfleet_cluster::apply_crd(client, &crd, "atfleet-local", Duration::from_secs(60)).await?;
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [SYSTEM_NAMESPACE, NAMESPACE] {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        namespaces.patch(ns, &pp, &Patch::Apply(&obj)).await?;
    }
    let class_ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "atfleet.dev",
        "v1alpha1",
        "AtServerClass",
    ));
    let classes: Api<DynamicObject> = Api::all_with(client.clone(), &class_ar);
    let class = json!({
        "apiVersion": "atfleet.dev/v1alpha1",
        "kind": "AtServerClass",
        "metadata": {"name": CLASS},
        "spec": {
            "storage": {"size": "64Mi", "retention": "Delete"},
            "exposure": {"mode": "NodePort", "host": "127.0.0.1"},
        },
    });
    classes.patch(CLASS, &pp, &Patch::Apply(&class)).await?;
    Ok(())
}

/// Marks a state directory as ours; a marked directory is emptied on the next start (a new
/// cluster starts from an empty etcd, database and node).
const MARKER: &str = ".atfleet-local";

fn prepare_state_dir(dir: &Path) -> Result<(), LocalError> {
    std::fs::create_dir_all(dir).map_err(LocalError::io(dir))?;
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(LocalError::io(dir))?
        .flatten()
        .map(|e| e.path())
        .collect();
    if !entries.is_empty() {
        if !dir.join(MARKER).exists() {
            return Err(LocalError::Command {
                what: format!("state directory {}", dir.display()),
                message:
                    "not empty and not made by atfleet-local: choose an empty or new directory"
                        .into(),
            });
        }
        for path in entries {
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(LocalError::io(&path))?;
        }
    }
    let marker = dir.join(MARKER);
    std::fs::write(&marker, "").map_err(LocalError::io(&marker))
}

pub(crate) fn free_port() -> Result<u16, LocalError> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(LocalError::io("127.0.0.1:0"))?;
    Ok(l.local_addr()
        .map_err(LocalError::io("127.0.0.1:0"))?
        .port())
}

/// Polls `url` until it answers 200, failing early if `proc` exits.
async fn wait_http(url: &str, proc: &mut Proc) -> Result<(), LocalError> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| LocalError::Timeout(format!("{url} (bad URL)")))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Ok(resp)) =
            tokio::time::timeout(Duration::from_secs(2), client.get(uri.clone())).await
        {
            if resp.status().is_success() {
                return Ok(());
            }
        }
        proc.check_running()?;
        if tokio::time::Instant::now() > deadline {
            return Err(LocalError::Timeout(format!("{} at {url}", proc.name)));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
