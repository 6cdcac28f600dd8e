//! The local cluster: a throwaway PostgreSQL, the atDirectory, kubesim, the process kubelet and the
//! operator on this machine, with the CRDs and an `AtServerClass` named `local` installed (NodePort
//! exposure published as 127.0.0.1). `kubectl` and `atctl` work against it through the files in
//! its state directory.

mod ca;
mod postgres;
mod process;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

use crate::kubesim::{self, Server};
// The node agent, under its old names; it needs the upstream control plane (no kubesim).
use atfleet_node_agent::{self as kubelet, NodeAgent as Kubelet};

pub use process::{tail, Proc};

/// The operator's namespace, where its CA Secret lives.
pub const SYSTEM_NAMESPACE: &str = "atfleet-system";
/// The namespace the demo's Atsigns live in.
pub const NAMESPACE: &str = "fleet";
/// The installed class.
pub const CLASS: &str = "local";

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
    #[error("kubesim: {0}")]
    Sim(#[from] kubesim::Error),
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{name} exited ({status}); its log ends:\n{log_tail}")]
    Exited {
        name: String,
        status: String,
        log_tail: String,
    },
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
    /// Where files, logs, pod directories and claims go (created if absent).
    pub state_dir: PathBuf,
    /// Where `atdirectory`, `atfleet-operator`, `atserver` and `atctl` are.
    pub bin_dir: PathBuf,
    /// Create a database in this server instead of starting a PostgreSQL cluster.
    pub database_url: Option<String>,
    /// kubesim's address (port 0 picks one).
    pub kubesim_listen: SocketAddr,
}

impl Options {
    pub fn new(state_dir: impl Into<PathBuf>, bin_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            bin_dir: bin_dir.into(),
            database_url: None,
            kubesim_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
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
    pub kubeconfig: PathBuf,
    /// `host:port` of the atDirectory's root protocol.
    pub root_server: String,
    /// The atDirectory's registration API.
    pub directory_url: String,
    /// The operator's built-in CA, which also issued the atDirectory's certificate.
    pub ca_bundle: PathBuf,
    pub sim: kubesim::Handle,
    pub client: kube::Client,
    kubelet: Option<kubelet::Handle>,
    directory: Option<Proc>,
    operator: Option<Proc>,
    postgres: Option<postgres::Postgres>,
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

        let postgres = match &opts.database_url {
            Some(url) => postgres::Postgres::database_in(url)?,
            None => postgres::Postgres::start_cluster(&state.join("postgres"))?,
        };

        let sim = Server::start(kubesim::Config {
            listen: opts.kubesim_listen,
            ..kubesim::Config::default()
        })
        .await?;
        let kubeconfig = state.join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig)?;
        let client = sim.client()?;
        install(&client).await?;

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

        let kubelet = Kubelet::start(
            client.clone(),
            kubelet::Config::processes(state.join("kubelet"), &opts.bin_dir),
        )
        .await
        .map_err(|e| LocalError::Command {
            what: "node agent".into(),
            message: e.to_string(),
        })?;

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
                ("KUBECONFIG", kubeconfig.display().to_string()),
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
            kubeconfig,
            root_server: format!("127.0.0.1:{root_port}"),
            directory_url,
            ca_bundle: tls.ca,
            sim,
            client,
            kubelet: Some(kubelet),
            directory: Some(directory),
            operator: Some(operator),
            postgres: Some(postgres),
        })
    }

    /// Fails when the atDirectory or the operator has exited.
    pub fn check(&mut self) -> Result<(), LocalError> {
        for p in [&mut self.directory, &mut self.operator]
            .into_iter()
            .flatten()
        {
            p.check_running()?;
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

    /// Stops the operator first (so it does not react to pods going away), then the pods, the
    /// atDirectory, kubesim and PostgreSQL.
    pub async fn shutdown(mut self) {
        if let Some(p) = self.operator.take() {
            p.stop(Duration::from_secs(10)).await;
        }
        if let Some(k) = self.kubelet.take() {
            k.shutdown().await;
        }
        if let Some(p) = self.directory.take() {
            p.stop(Duration::from_secs(10)).await;
        }
        drop(self.postgres.take());
        self.sim.shutdown().await;
    }
}

/// The CRDs, the namespaces and the `local` class.
async fn install(client: &kube::Client) -> Result<(), LocalError> {
    let pp = PatchParams::apply("atfleet-local").force();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for doc in CRDS {
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(doc).map_err(|e| LocalError::Manifest(e.to_string()))?;
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.patch(&name, &pp, &Patch::Apply(&crd)).await?;
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

/// Marks a state directory as ours; a marked directory is emptied on the next start, since
/// nothing in it (keys, claims, the database) matches a new in-memory cluster.
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
