//! kubesim: an in-memory Kubernetes API server good enough for `kube::Client`, kube-runtime
//! controllers and `kubectl`. One process-wide lock guards the store; every request is audited;
//! faults can be injected into writes.
//!
//! ```no_run
//! # async fn demo() -> Result<(), atfleet_e2e::kubesim::Error> {
//! let sim = atfleet_e2e::kubesim::Server::start(Default::default()).await?;
//! let client = sim.client()?;
//! # drop(client); sim.shutdown().await; Ok(()) }
//! ```
//!
//! Deliberate gaps, compared with a real apiserver: plain HTTP only and no authentication or RBAC;
//! JSON and YAML only (kubectl's typed `create <kind>` commands send protobuf and get 415; use
//! `kubectl apply` or `create -f`); no admission webhooks, no CRD conversion between versions (all
//! served versions share one stored form), no built-in controllers (StatefulSets do not create
//! pods); lists are served from current state, not a snapshot at the continue token's version;
//! server-side apply knows the list keys of the built-in fields the operator and kubelet touch, and
//! `x-kubernetes-list-type` for custom resources.

mod apply;
mod audit;
mod cel;
mod deletion;
mod discovery;
mod error;
mod events;
mod faults;
mod fieldset;
mod gc;
mod handlers;
mod hooks;
mod listing;
mod lists;
mod objects;
mod openapi;
mod patch;
mod resources;
mod routes;
mod scale;
mod schema;
mod selectors;
mod state;
mod store;
mod table;
mod watch;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use audit::{AuditEvent, AuditLog};
pub use error::ApiError;
pub use faults::{FaultConfig, Faults};

use state::State;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("kube client: {0}")]
    Client(#[from] kube::Error),
    #[error("invalid server URL: {0}")]
    Url(#[from] axum::http::uri::InvalidUri),
    #[error("writing kubeconfig: {0}")]
    Io(#[from] std::io::Error),
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// How many change events are kept for watch resumption; older resourceVersions get 410 Gone.
    pub history_limit: usize,
    /// How often watches that allow bookmarks receive one.
    pub bookmark_interval: Duration,
    pub faults: FaultConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(30),
            faults: FaultConfig::default(),
        }
    }
}

/// What request handlers share.
pub(crate) struct Shared {
    state: Mutex<State>,
    audit: AuditLog,
    faults: Faults,
    config: Config,
    addr: SocketAddr,
    shutdown: CancellationToken,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct Server;

impl Server {
    /// Binds and starts serving in the background.
    pub async fn start(config: Config) -> Result<Handle, Error> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(config.history_limit)),
            audit: AuditLog::default(),
            faults: Faults::new(config.faults.clone()),
            config,
            addr,
            shutdown: shutdown.clone(),
        });
        let app = axum::Router::new()
            .fallback(handlers::handle)
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                handlers::audit_and_faults,
            ))
            .with_state(shared.clone());
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "kubesim stopped");
            }
        });
        Ok(Handle { shared, addr, task })
    }
}

/// A running kubesim.
pub struct Handle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Handle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A `kube::Client` talking to this server, default namespace `default`.
    pub fn client(&self) -> Result<kube::Client, Error> {
        let config = kube::Config::new(self.url().parse()?);
        Ok(kube::Client::try_from(config)?)
    }

    /// A kubeconfig document pointing at this server (no credentials needed).
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kubesim\n  cluster:\n    server: {url}\nusers:\n- name: kubesim\n  user: {{}}\ncontexts:\n- name: kubesim\n  context:\n    cluster: kubesim\n    user: kubesim\n    namespace: default\ncurrent-context: kubesim\npreferences: {{}}\n",
            url = self.url()
        )
    }

    /// Writes the kubeconfig atomically (temporary file, then rename), so a process waiting for the
    /// file never reads half of it.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), Error> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        std::fs::write(&partial, self.kubeconfig())?;
        std::fs::rename(&partial, path)?;
        Ok(())
    }

    pub fn audit(&self) -> &AuditLog {
        &self.shared.audit
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Stops accepting requests, ends open watches and waits for the server task.
    pub async fn shutdown(self) {
        self.shared.shutdown.cancel();
        let _ = self.task.await;
    }
}
