//! The atfleet node agent: a kubelet stand-in for the upstream Kubernetes control plane on one
//! machine, without a container engine.
//!
//! [`NodeAgent::start`] registers a `Node` and keeps it alive (its `Lease` in `kube-node-lease`
//! renewed every 10 s, the Ready condition's heartbeat every 30 s), then, in the background:
//! - runs the pods the scheduler binds to the node (a watch on `spec.nodeName=<node>`):
//!   [`Mode::Processes`] starts one process per container (the image mapped to a local binary by
//!   [`ImageMap`], volumes as local directories, mount paths and listen addresses in args and env
//!   rewritten to them, readiness probes, restarts with backoff; Secret and ConfigMap volumes
//!   in the kubelet's atomic `..data` layout, rewritten while the pod runs when their object
//!   changes, `subPath` mounts of them copied at each container start and never refreshed);
//!   [`Mode::Simulate`] starts nothing and reports the pod Ready at once, as does process mode
//!   for pods whose namespace carries the label [`SIMULATE_LABEL`]`=true`;
//! - reports pod status (phase, conditions, container statuses, pod and host IP 127.0.0.1);
//! - honours deletion: SIGTERM, SIGKILL after `deletionGracePeriodSeconds`, then deletes the pod
//!   object with grace 0 and a uid precondition, as the real kubelet does;
//! - gives each process a kubeconfig for its service account (a bound token from the
//!   TokenRequest API, refreshed before 80% of its life) in place of the in-cluster files;
//! - provisions `local-path` volumes (a directory per PersistentVolume, reclaimed on `Delete`,
//!   expanded when the claim grows);
//! - forwards `127.0.0.1:<nodePort>` of NodePort/LoadBalancer Services to a ready selected pod
//!   (in place of kube-proxy);
//! - optionally serves the kubelet's `containerLogs` API for `kubectl logs`.
//!
//! Not done: refreshing projected and downward API volumes (written once at the pod's start,
//! service-account tokens apart), liveness and startup probes, exec probes (counted as
//! passing), init containers, resource limits, `runAsUser` (processes run as the caller),
//! `restartPolicy` other than `Always`, hostPath volumes, ClusterIP Services and cluster DNS (a
//! process reaches only loopback ports and NodePorts).

mod atomic;
mod downward;
mod endpoints;
mod env;
mod error;
mod forward;
mod images;
mod logs;
mod node;
mod pods;
mod probe;
mod provisioner;
mod refresh;
mod services;
mod state;
mod tokens;
mod volumes;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use error::AgentError;
pub use images::{image_name, ImageMap};
pub use node::{host_resources, HostResources};
pub use provisioner::{
    PROVISIONED_BY_ANNOTATION, PROVISIONER_NAME, SELECTED_NODE_ANNOTATION, STORAGE_CLASS_NAME,
};

use endpoints::Endpoints;

/// The namespace label that makes the pods of a namespace simulated even in [`Mode::Processes`].
pub const SIMULATE_LABEL: &str = "node-agent.atfleet.dev/simulate";

/// The `kubeletVersion` the Node reports (the control plane's version).
pub const KUBELET_VERSION: &str = "v1.37.2";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run containers as local processes (pods in a namespace labelled
    /// [`SIMULATE_LABEL`]`=true` are still simulated).
    Processes,
    /// Start nothing; report every pod Ready as soon as it is bound here (fleet-scale tests).
    Simulate,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    /// The Node this agent registers and runs pods for.
    pub node_name: String,
    /// Pod directories (`pods/<ns>/<pod>-<uid>/`) and provisioned volumes (`volumes/<pv>/`).
    pub state_dir: PathBuf,
    pub images: ImageMap,
    /// `pods` in the Node's capacity and allocatable.
    pub max_pods: u32,
    /// The API server URL written into each pod's kubeconfig (and `KUBERNETES_SERVICE_HOST`/
    /// `_PORT`); `None` gives processes no kubeconfig.
    pub api_server: Option<String>,
    /// Taints the Node is created with (as the kubelet's `--register-with-taints`), e.g. to keep
    /// other workloads off a test node; an existing Node keeps its taints.
    pub register_with_taints: Vec<k8s_openapi::api::core::v1::Taint>,
    /// Serve the kubelet API (`containerLogs`) over HTTPS on 127.0.0.1 at this port (0: any free
    /// port) and publish it as the Node's `daemonEndpoints.kubeletEndpoint.port`.
    pub kubelet_port: Option<u16>,
    /// First restart delay, doubled on each crash up to `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Probe periods and initial delays are shortened to at most this.
    pub max_probe_period: Duration,
    /// Full re-check interval of the provisioner and the forwarders besides watch events.
    pub resync: Duration,
}

impl Config {
    /// Process mode with the given state directory and binary directory.
    pub fn processes(state_dir: impl Into<PathBuf>, bin_dir: impl Into<PathBuf>) -> Self {
        Self {
            mode: Mode::Processes,
            node_name: "local".into(),
            state_dir: state_dir.into(),
            images: ImageMap::new(bin_dir),
            max_pods: 110,
            api_server: None,
            register_with_taints: Vec::new(),
            kubelet_port: None,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(10),
            max_probe_period: Duration::from_secs(1),
            resync: Duration::from_secs(10),
        }
    }

    /// Simulation mode: no processes; `state_dir` still holds provisioned volume directories.
    pub fn simulate(state_dir: impl Into<PathBuf>) -> Self {
        let state_dir = state_dir.into();
        Self {
            mode: Mode::Simulate,
            ..Self::processes(state_dir.clone(), state_dir)
        }
    }
}

/// What pod workers share.
pub(crate) struct Settings {
    client: kube::Client,
    node_name: String,
    state_dir: PathBuf,
    images: ImageMap,
    api_server: Option<String>,
    backoff_base: Duration,
    backoff_cap: Duration,
    max_probe_period: Duration,
    /// Secret and ConfigMap watches for the namespaces of running process pods.
    watches: refresh::Watches,
}

pub struct NodeAgent;

impl NodeAgent {
    /// Registers the Node (and the `local-path` StorageClass), then runs in the background until
    /// [`Handle::shutdown`]. Fails when the Node cannot be registered.
    pub async fn start(client: kube::Client, config: Config) -> Result<Handle, AgentError> {
        let stop = CancellationToken::new();
        let node_stop = CancellationToken::new();
        let endpoints = Endpoints::default();
        let logs = match config.kubelet_port {
            Some(port) => Some(
                logs::LogServer::start(port, config.state_dir.join("pods"), stop.clone()).await?,
            ),
            None => None,
        };
        let resources = match config.mode {
            Mode::Processes => host_resources(&config.state_dir),
            // Simulated pods use none of this machine: the Node stands for one big enough for
            // max_pods of them, or requests (atServers ask 10m CPU each) would cap a fleet-scale
            // test at this machine's cores (200 pods on 2 cores).
            Mode::Simulate => node::simulated_resources(&config.state_dir, config.max_pods),
        };
        let node = node::NodeInfo {
            name: config.node_name.clone(),
            resources,
            max_pods: config.max_pods,
            kubelet_port: logs.as_ref().map(|l| l.port),
            taints: config.register_with_taints.clone(),
        };
        let registered = match node::register(&client, &node).await {
            Ok(r) => r,
            Err(e) => {
                stop.cancel();
                return Err(e);
            }
        };
        if let Err(e) = provisioner::ensure_storage_class(&client).await {
            stop.cancel();
            return Err(e);
        }
        let settings = Arc::new(Settings {
            client: client.clone(),
            node_name: config.node_name.clone(),
            state_dir: config.state_dir.clone(),
            images: config.images.clone(),
            api_server: config.api_server.clone(),
            backoff_base: config.backoff_base,
            backoff_cap: config.backoff_cap,
            max_probe_period: config.max_probe_period,
            watches: refresh::Watches::new(client.clone(), stop.clone()),
        });
        let mut tasks = Vec::new();
        let node_task = tokio::spawn(node::heartbeat(
            client.clone(),
            node,
            registered,
            node_stop.clone(),
        ));
        tasks.push(tokio::spawn(provisioner::run(
            client.clone(),
            config.node_name.clone(),
            config.state_dir.join("volumes"),
            config.resync,
            stop.clone(),
        )));
        if config.mode == Mode::Processes {
            tasks.push(tokio::spawn(services::run(
                client.clone(),
                endpoints.clone(),
                config.resync,
                stop.clone(),
            )));
        }
        let pods_task = tokio::spawn(pods::run(settings, config.mode, endpoints, stop.clone()));
        Ok(Handle {
            stop,
            node_stop,
            pods_task,
            node_task,
            tasks,
            kubelet_port: logs.map(|l| l.port),
        })
    }
}

/// A running node agent.
pub struct Handle {
    stop: CancellationToken,
    node_stop: CancellationToken,
    pods_task: tokio::task::JoinHandle<()>,
    node_task: tokio::task::JoinHandle<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    kubelet_port: Option<u16>,
}

impl Handle {
    /// The port the kubelet API listens on, when it is served.
    pub fn kubelet_port(&self) -> Option<u16> {
        self.kubelet_port
    }

    /// Stops every pod's containers (SIGTERM, then SIGKILL after each pod's grace period), marks
    /// the Node NotReady (reason `NodeAgentStopped`) and stops. Pod objects and the Node are left
    /// in place: a later agent with the same node name takes them over.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.pods_task.await;
        for t in self.tasks {
            let _ = t.await;
        }
        self.node_stop.cancel();
        let _ = self.node_task.await;
    }
}
