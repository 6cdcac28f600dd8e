//! The upstream Kubernetes control plane on this machine: etcd, kube-apiserver,
//! kube-controller-manager and kube-scheduler, built from the Go modules pinned in
//! `controlplane/go.mod` by `scripts/controlplane-build`, each started as a process with its log in
//! the state directory.
//!
//! Nothing here imitates Kubernetes: it makes certificates and kubeconfigs, picks ports, starts the
//! four upstream binaries with the flags a kubeadm-style cluster uses, and waits until they serve.
//! Pods need a node: `atfleet-node-agent` registers one and runs what the scheduler binds to it.

pub mod fault_proxy;
mod kubeconfig;
mod pki;
pub mod process;
mod readiness;
pub mod shared;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use fault_proxy::{FaultConfig, FaultProxy, Logged};
pub use kubeconfig::Kubeconfig;
pub use pki::{Identity, Pair, Pki};
pub use process::Proc;
pub use shared::{SharedCluster, KUBECONFIG_ENV, SIMULATE_LABEL, STATE_ENV};

/// The cluster's service network; the apiserver takes the first address for `kubernetes.default`.
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificates: {0}")]
    Pki(String),
    #[error("the control-plane binaries: {0}")]
    Binaries(String),
    #[error("{name} exited ({status}); its log {log} ends:\n{log_tail}")]
    Exited {
        name: String,
        status: String,
        log: PathBuf,
        log_tail: String,
    },
    #[error("timed out after {seconds} s waiting for {what}")]
    Timeout { what: String, seconds: u64 },
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Environment(String),
}

impl ClusterError {
    pub(crate) fn io(path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> ClusterError {
        let path = path.as_ref().to_path_buf();
        move |source| ClusterError::Io { path, source }
    }
}

/// Applies `crd` server-side as `field_manager` (forced, so every writer of the same content
/// agrees) and waits up to `timeout` until the apiserver serves it (Established).
pub async fn apply_crd(
    client: &kube::Client,
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    field_manager: &str,
    timeout: Duration,
) -> Result<(), ClusterError> {
    use kube::api::{Patch, PatchParams};
    let crds: kube::Api<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    > = kube::Api::all(client.clone());
    let name = crd.metadata.name.clone().unwrap_or_default();
    crds.patch(
        &name,
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(crd),
    )
    .await?;
    let established = kube::runtime::wait::await_condition(
        crds,
        &name,
        kube::runtime::conditions::is_crd_established(),
    );
    match tokio::time::timeout(timeout, established).await {
        Ok(Ok(_)) => Ok(()),
        _ => Err(ClusterError::Timeout {
            what: format!("CRD {name} Established"),
            seconds: timeout.as_secs(),
        }),
    }
}

/// Where the four binaries are: `ATFLEET_CONTROLPLANE_BIN` when set, else what
/// `scripts/controlplane-build` prints (it builds them once into `~/.cache`).
pub fn binaries() -> Result<PathBuf, ClusterError> {
    if let Some(dir) = std::env::var_os("ATFLEET_CONTROLPLANE_BIN").filter(|d| !d.is_empty()) {
        return check_binaries(PathBuf::from(dir));
    }
    let script = build_script();
    let out = std::process::Command::new(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(ClusterError::io(&script))?;
    if !out.status.success() {
        return Err(ClusterError::Binaries(format!(
            "{} failed ({})",
            script.display(),
            out.status
        )));
    }
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    check_binaries(PathBuf::from(dir))
}

/// `scripts/controlplane-build` of the checkout we run in: found from the working directory upwards
/// (tests run in their crate's directory), else next to the source this was compiled from. The
/// compiled-in path alone is not enough: a shared target directory may hold this crate as built
/// from another clone, which may be gone.
fn build_script() -> PathBuf {
    const SCRIPT: &str = "scripts/controlplane-build";
    let from_cwd = std::env::current_dir().ok().and_then(|cwd| {
        cwd.ancestors()
            .map(|dir| dir.join(SCRIPT))
            .find(|candidate| candidate.is_file())
    });
    from_cwd.unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(SCRIPT)
    })
}

const BINARIES: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

fn check_binaries(dir: PathBuf) -> Result<PathBuf, ClusterError> {
    for name in BINARIES {
        if !dir.join(name).is_file() {
            return Err(ClusterError::Binaries(format!(
                "{} is missing (build them with scripts/controlplane-build)",
                dir.join(name).display()
            )));
        }
    }
    Ok(dir)
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Certificates, kubeconfigs, etcd's data and the logs (`logs/<component>.log`) go here. It
    /// must be empty or absent.
    pub state_dir: PathBuf,
    /// Where `etcd`, `kube-apiserver`, `kube-controller-manager` and `kube-scheduler` are.
    pub bin_dir: PathBuf,
    /// Requests per second the controller manager and the scheduler may send (upstream's
    /// defaults, 20 and 50, throttle a fleet of thousands of StatefulSets to minutes).
    pub client_qps: u32,
    /// Log verbosity of the Kubernetes components (`-v`).
    pub verbosity: u8,
    /// How long each component may take to become ready.
    pub startup_timeout: Duration,
}

impl Options {
    pub fn new(state_dir: impl Into<PathBuf>, bin_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            bin_dir: bin_dir.into(),
            client_qps: 200,
            verbosity: 1,
            startup_timeout: Duration::from_secs(120),
        }
    }
}

/// A running control plane. Dropping it kills the processes; [`ControlPlane::shutdown`] stops
/// them in order.
pub struct ControlPlane {
    pub state_dir: PathBuf,
    /// `https://127.0.0.1:<port>`
    pub server: String,
    /// A kubeconfig for `atfleet-admin` in `system:masters` (cluster-admin).
    pub admin_kubeconfig: PathBuf,
    /// The cluster CA's certificate (it signed the apiserver's serving certificate).
    pub ca_cert: PathBuf,
    /// etcd's client URL (`/metrics` there reports the database size).
    pub etcd_url: String,
    pub pki: Pki,
    pub logs: PathBuf,
    procs: Vec<Proc>,
}

fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(ClusterError::io("127.0.0.1:0"))?;
    let port = listener
        .local_addr()
        .map_err(ClusterError::io("127.0.0.1:0"))?
        .port();
    Ok(port)
}

impl ControlPlane {
    /// Starts etcd, the apiserver, the controller manager and the scheduler and returns once the
    /// apiserver is ready and the controllers have made the `default` namespace's service account
    /// and root CA ConfigMap (so pods can be admitted).
    pub async fn start(opts: Options) -> Result<Self, ClusterError> {
        let bin = check_binaries(opts.bin_dir.clone())?;
        let state = opts.state_dir.clone();
        std::fs::create_dir_all(&state).map_err(ClusterError::io(&state))?;
        let logs = state.join("logs");
        std::fs::create_dir_all(&logs).map_err(ClusterError::io(&logs))?;
        let pki = Pki::create(&state.join("pki"))?;
        let sa = pki.service_account_keys()?;
        let serving = pki.serving(
            "apiserver",
            "kube-apiserver",
            &[
                "127.0.0.1",
                "localhost",
                KUBERNETES_SERVICE_IP,
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
        )?;
        let kubelet_client = pki.client(
            "apiserver-kubelet-client",
            &Identity {
                user: "kube-apiserver-kubelet-client",
                groups: &["system:masters"],
            },
        )?;
        // Aggregated API servers and the controllers' delegated authentication read the
        // front-proxy settings; without them they log a missing requestheader CA forever.
        let front_proxy = pki.client(
            "front-proxy-client",
            &Identity {
                user: "front-proxy-client",
                groups: &[],
            },
        )?;
        let v = format!("-v={}", opts.verbosity);
        let mut procs = Vec::new();
        let timeout = opts.startup_timeout;

        let (etcd_port, etcd_peer) = (free_port()?, free_port()?);
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        procs.push(Proc::spawn(
            "etcd",
            &bin.join("etcd"),
            &[
                "--name=atfleet".into(),
                format!("--data-dir={}", state.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=atfleet={peer_url}"),
                "--log-level=warn".into(),
            ],
            &[],
            &logs,
        )?);
        readiness::etcd(&etcd_url, &mut procs[0], timeout).await?;

        let api_port = free_port()?;
        let server = format!("https://127.0.0.1:{api_port}");
        let path = |p: &Path| p.display().to_string();
        procs.push(Proc::spawn(
            "kube-apiserver",
            &bin.join("kube-apiserver"),
            &[
                format!("--etcd-servers={etcd_url}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                // The `kubernetes` Service's endpoint reconciler refuses a loopback address; pods
                // reach the apiserver through the kubeconfig the node agent gives them.
                "--endpoint-reconciler-type=none".into(),
                format!("--secure-port={api_port}"),
                format!("--cert-dir={}", path(&state.join("pki"))),
                format!("--tls-cert-file={}", path(&serving.cert)),
                format!("--tls-private-key-file={}", path(&serving.key)),
                format!("--client-ca-file={}", path(&pki.ca_cert)),
                format!(
                    "--kubelet-client-certificate={}",
                    path(&kubelet_client.cert)
                ),
                format!("--kubelet-client-key={}", path(&kubelet_client.key)),
                "--kubelet-preferred-address-types=InternalIP,Hostname".into(),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={}", path(&sa.cert)),
                format!("--service-account-signing-key-file={}", path(&sa.key)),
                format!("--service-cluster-ip-range={SERVICE_CIDR}"),
                "--authorization-mode=Node,RBAC".into(),
                format!("--requestheader-client-ca-file={}", path(&pki.ca_cert)),
                "--requestheader-allowed-names=front-proxy-client".into(),
                "--requestheader-username-headers=X-Remote-User".into(),
                "--requestheader-group-headers=X-Remote-Group".into(),
                "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
                format!("--proxy-client-cert-file={}", path(&front_proxy.cert)),
                format!("--proxy-client-key-file={}", path(&front_proxy.key)),
                "--allow-privileged=true".into(),
                "--profiling=false".into(),
                v.clone(),
            ],
            &[],
            &logs,
        )?);
        let admin = pki.client(
            "admin",
            &Identity {
                user: "atfleet-admin",
                groups: &["system:masters"],
            },
        )?;
        let admin_kubeconfig = state.join("kubeconfig");
        Kubeconfig::client_certificate(&server, &pki.ca_cert, &admin, "atfleet-admin")
            .write(&admin_kubeconfig)?;
        let client = kubeconfig::client(&admin_kubeconfig).await?;
        readiness::apiserver(&client, &mut procs[1], timeout).await?;

        let qps = opts.client_qps.to_string();
        let burst = (opts.client_qps * 2).to_string();
        let cm = pki.client(
            "controller-manager",
            &Identity {
                user: "system:kube-controller-manager",
                groups: &[],
            },
        )?;
        let cm_kubeconfig = state.join("controller-manager.kubeconfig");
        Kubeconfig::client_certificate(
            &server,
            &pki.ca_cert,
            &cm,
            "system:kube-controller-manager",
        )
        .write(&cm_kubeconfig)?;
        procs.push(Proc::spawn(
            "kube-controller-manager",
            &bin.join("kube-controller-manager"),
            &[
                format!("--kubeconfig={}", path(&cm_kubeconfig)),
                format!("--authentication-kubeconfig={}", path(&cm_kubeconfig)),
                format!("--authorization-kubeconfig={}", path(&cm_kubeconfig)),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={}", free_port()?),
                format!("--cert-dir={}", path(&state.join("pki"))),
                "--leader-elect=false".into(),
                "--use-service-account-credentials=true".into(),
                format!("--service-account-private-key-file={}", path(&sa.key)),
                format!("--root-ca-file={}", path(&pki.ca_cert)),
                format!("--cluster-signing-cert-file={}", path(&pki.ca_cert)),
                format!(
                    "--cluster-signing-key-file={}",
                    path(&pki.dir.join("ca.key"))
                ),
                format!("--service-cluster-ip-range={SERVICE_CIDR}"),
                "--controllers=*".into(),
                format!("--kube-api-qps={qps}"),
                format!("--kube-api-burst={burst}"),
                "--concurrent-statefulset-syncs=20".into(),
                "--profiling=false".into(),
                v.clone(),
            ],
            &[],
            &logs,
        )?);

        let sched = pki.client(
            "scheduler",
            &Identity {
                user: "system:kube-scheduler",
                groups: &[],
            },
        )?;
        let sched_kubeconfig = state.join("scheduler.kubeconfig");
        Kubeconfig::client_certificate(&server, &pki.ca_cert, &sched, "system:kube-scheduler")
            .write(&sched_kubeconfig)?;
        let sched_config = state.join("scheduler.yaml");
        std::fs::write(
            &sched_config,
            format!(
                "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n\
                 leaderElection:\n  leaderElect: false\n\
                 clientConnection:\n  kubeconfig: {}\n  qps: {qps}\n  burst: {burst}\n",
                path(&sched_kubeconfig)
            ),
        )
        .map_err(ClusterError::io(&sched_config))?;
        procs.push(Proc::spawn(
            "kube-scheduler",
            &bin.join("kube-scheduler"),
            &[
                format!("--config={}", path(&sched_config)),
                format!("--authentication-kubeconfig={}", path(&sched_kubeconfig)),
                format!("--authorization-kubeconfig={}", path(&sched_kubeconfig)),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={}", free_port()?),
                format!("--cert-dir={}", path(&state.join("pki"))),
                v.clone(),
            ],
            &[],
            &logs,
        )?);
        let mut cp = Self {
            state_dir: state,
            server,
            admin_kubeconfig,
            ca_cert: pki.ca_cert.clone(),
            etcd_url,
            pki,
            logs,
            procs,
        };
        readiness::controllers(&client, &mut cp.procs, timeout).await?;
        Ok(cp)
    }

    /// A client with cluster-admin rights.
    pub async fn client(&self) -> Result<kube::Client, ClusterError> {
        kubeconfig::client(&self.admin_kubeconfig).await
    }

    /// Fails with a log tail when any component has exited.
    pub fn check_running(&mut self) -> Result<(), ClusterError> {
        self.procs.iter_mut().try_for_each(Proc::check_running)
    }

    /// Stops the scheduler, the controller manager, the apiserver and etcd, in that order.
    pub async fn shutdown(mut self) {
        while let Some(p) = self.procs.pop() {
            p.stop(Duration::from_secs(10)).await;
        }
    }
}
