//! `atfleet-cluster up`: the upstream control plane (and, when given, the node agent) on this
//! machine until SIGINT or SIGTERM. `scripts/with-controlplane` runs the test suite inside one.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use atfleet_cluster::{ControlPlane, Options, Proc, KUBECONFIG_ENV, STATE_ENV};
use clap::{Parser, Subcommand};
use k8s_openapi::api::core::v1::Node;
use kube::Api;

#[derive(Parser)]
#[command(
    version,
    about = "The upstream Kubernetes control plane on this machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start etcd, kube-apiserver, kube-controller-manager and kube-scheduler (and the node agent
    /// when --node-agent is given); stop them on SIGINT or SIGTERM.
    Up(Up),
}

#[derive(Parser)]
struct Up {
    /// Certificates, kubeconfigs, etcd's data and logs (`logs/`) go here; it must be empty or
    /// absent.
    #[arg(long, env = "ATFLEET_CLUSTER_STATE_DIR")]
    state_dir: PathBuf,
    /// Where the control-plane binaries are; default: what scripts/controlplane-build prints
    /// (it builds them once).
    #[arg(long, env = "ATFLEET_CONTROLPLANE_BIN")]
    bin_dir: Option<PathBuf>,
    /// Once ready, write `export ATFLEET_KUBECONFIG=…` and `export ATFLEET_CLUSTER_STATE=…`
    /// lines to this file (written last, so its presence means ready).
    #[arg(long, env = "ATFLEET_CLUSTER_ENV_FILE")]
    env_file: Option<PathBuf>,
    /// The node agent binary to run against the cluster (its files under `<state-dir>/node`,
    /// its log in `logs/node-agent.log`); `up` waits until its Node is Ready.
    #[arg(long, env = "ATFLEET_CLUSTER_NODE_AGENT")]
    node_agent: Option<PathBuf>,
    /// An extra argument for the node agent (repeatable), e.g. `--node-agent-arg=--bin-dir=DIR`.
    #[arg(long = "node-agent-arg", allow_hyphen_values = true)]
    node_agent_args: Vec<String>,
    /// Requests per second for the controller manager's and the scheduler's clients.
    #[arg(long, default_value_t = 200)]
    client_qps: u32,
    /// Log verbosity of the Kubernetes components.
    #[arg(long, default_value_t = 1)]
    verbosity: u8,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // kube's client logs every refused connection while the apiserver starts; readiness is
    // reported here instead.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_client=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let Command::Up(up) = Cli::parse().command;
    run(up).await
}

async fn run(up: Up) -> anyhow::Result<()> {
    let started = Instant::now();
    let bin_dir = match up.bin_dir {
        Some(dir) => dir,
        None => atfleet_cluster::binaries()?,
    };
    if up.state_dir.exists()
        && std::fs::read_dir(&up.state_dir)
            .with_context(|| up.state_dir.display().to_string())?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty: give an empty or new state directory",
            up.state_dir.display()
        );
    }
    let mut opts = Options::new(&up.state_dir, &bin_dir);
    opts.client_qps = up.client_qps;
    opts.verbosity = up.verbosity;
    let cp = ControlPlane::start(opts).await?;
    eprintln!(
        "control plane ready in {:.1} s: apiserver {}, logs in {}",
        started.elapsed().as_secs_f64(),
        cp.server,
        cp.logs.display()
    );
    let mut agent = None;
    if let Some(program) = &up.node_agent {
        let node_dir = up.state_dir.join("node");
        let mut args = vec![
            format!("--kubeconfig={}", cp.admin_kubeconfig.display()),
            format!("--api-server={}", cp.server),
            format!("--state-dir={}", node_dir.display()),
        ];
        args.extend(up.node_agent_args.iter().cloned());
        let mut proc = Proc::spawn("node-agent", program, &args, &[], &cp.logs)?;
        wait_for_node(&cp.client().await?, &mut proc).await?;
        eprintln!(
            "node ready in {:.1} s (node agent log: {})",
            started.elapsed().as_secs_f64(),
            proc.log.display()
        );
        agent = Some(proc);
    }
    if let Some(file) = &up.env_file {
        let text = format!(
            "export {KUBECONFIG_ENV}={}\nexport {STATE_ENV}={}\n",
            cp.admin_kubeconfig.display(),
            up.state_dir.display()
        );
        let partial = file.with_extension("partial");
        std::fs::write(&partial, text).with_context(|| partial.display().to_string())?;
        std::fs::rename(&partial, file).with_context(|| file.display().to_string())?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    if let Some(agent) = agent {
        agent.stop(Duration::from_secs(30)).await;
    }
    cp.shutdown().await;
    eprintln!(
        "control plane stopped; its files are in {}",
        up.state_dir.display()
    );
    Ok(())
}

/// Waits until a Node reports Ready=True, failing when the agent exits.
async fn wait_for_node(client: &kube::Client, agent: &mut Proc) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        agent.check_running()?;
        let list = nodes.list(&Default::default()).await?;
        let ready = list.items.iter().any(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        });
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "no Node became Ready within 120 s; see {}",
                agent.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
