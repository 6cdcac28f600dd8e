//! `atfleet-node-agent`: registers a Node with a Kubernetes API server and runs the pods bound to
//! it as local processes (or simulates them), provisions `local-path` volumes and forwards
//! NodePorts on 127.0.0.1.

use std::path::PathBuf;

use anyhow::Context;
use atfleet_node_agent::{Config, ImageMap, Mode, NodeAgent};
use clap::Parser;

/// A kubelet stand-in without a container engine: the pods the scheduler binds to this node run
/// as processes of this machine.
#[derive(Debug, Parser)]
#[command(name = "atfleet-node-agent", version, about, long_about = None)]
struct Args {
    /// Kubeconfig to reach the API server with (else KUBECONFIG, ~/.kube/config or in-cluster).
    #[arg(long, env = "ATFLEET_NODE_AGENT_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,

    /// Name of the Node to register and run pods for.
    #[arg(long, env = "ATFLEET_NODE_AGENT_NODE_NAME", default_value = "local")]
    node_name: String,

    /// Directory for pod directories (pods/) and provisioned volumes (volumes/).
    #[arg(long, env = "ATFLEET_NODE_AGENT_STATE_DIR")]
    state_dir: PathBuf,

    /// Directory of the programs that stand in for images: image `ghcr.io/x/atserver:1` runs
    /// `<bin-dir>/atserver` (default: this program's directory).
    #[arg(long, env = "ATFLEET_NODE_AGENT_BIN_DIR")]
    bin_dir: Option<PathBuf>,

    /// Program for an image name, NAME=PATH (repeatable; comma-separated in the environment).
    #[arg(long = "image", value_name = "NAME=PATH", env = "ATFLEET_NODE_AGENT_IMAGE", value_delimiter = ',', value_parser = parse_image)]
    images: Vec<(String, PathBuf)>,

    /// Start no processes: report every pod Ready at once (fleet-scale tests).
    #[arg(long, env = "ATFLEET_NODE_AGENT_SIMULATE")]
    simulate: bool,

    /// `pods` capacity of the Node.
    #[arg(long, env = "ATFLEET_NODE_AGENT_MAX_PODS", default_value_t = 110)]
    max_pods: u32,

    /// API server URL written into each pod's kubeconfig (default: the server this agent uses).
    #[arg(long, env = "ATFLEET_NODE_AGENT_API_SERVER")]
    api_server: Option<String>,

    /// Serve the kubelet API (containerLogs, for `kubectl logs`) over HTTPS on 127.0.0.1 at this
    /// port (0: any free port); off unless given.
    #[arg(long, env = "ATFLEET_NODE_AGENT_KUBELET_PORT")]
    kubelet_port: Option<u16>,
}

fn parse_image(s: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=PATH"))?;
    if name.is_empty() || path.is_empty() {
        return Err(format!("{s:?} is not NAME=PATH"));
    }
    Ok((name.to_owned(), PathBuf::from(path)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let kube_config = match &args.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig: pass --kubeconfig or set KUBECONFIG")?,
    };
    let api_server = args.api_server.clone().unwrap_or_else(|| {
        kube_config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_owned()
    });
    let client = kube::Client::try_from(kube_config).context("kubernetes client")?;
    let bin_dir = match args.bin_dir {
        Some(d) => d,
        None => std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(PathBuf::from))
            .context("--bin-dir is needed (this program's directory is unknown)")?,
    };
    let mut images = ImageMap::new(bin_dir);
    for (name, path) in args.images {
        images = images.with(&name, path);
    }
    let state_dir = std::path::absolute(&args.state_dir)
        .with_context(|| format!("--state-dir {}", args.state_dir.display()))?;
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("--state-dir {}", state_dir.display()))?;
    let mut config = Config::processes(state_dir, PathBuf::new());
    config.images = images;
    config.mode = if args.simulate {
        Mode::Simulate
    } else {
        Mode::Processes
    };
    config.node_name = args.node_name;
    config.max_pods = args.max_pods;
    config.api_server = Some(api_server);
    config.kubelet_port = args.kubelet_port;
    let agent = NodeAgent::start(client, config)
        .await
        .context("starting the node agent")?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping: pods first, then the node is marked NotReady");
    agent.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags() {
        Args::command().debug_assert();
        let a = Args::try_parse_from([
            "atfleet-node-agent",
            "--state-dir",
            "/s",
            "--image",
            "sh=/bin/sh",
            "--image",
            "atserver=/t/atserver",
            "--max-pods",
            "20000",
            "--simulate",
        ])
        .expect("parses");
        assert_eq!(a.images.len(), 2);
        assert_eq!(a.max_pods, 20000);
        assert!(a.simulate);
        assert_eq!(a.node_name, "local");
        assert!(
            Args::try_parse_from(["atfleet-node-agent", "--state-dir", "/s", "--image", "x"])
                .is_err()
        );
        // Every flag also from the environment.
        std::env::set_var("ATFLEET_NODE_AGENT_SIMULATE", "true");
        std::env::set_var("ATFLEET_NODE_AGENT_IMAGE", "a=/x,b=/y");
        std::env::set_var("ATFLEET_NODE_AGENT_MAX_PODS", "7");
        let e = Args::try_parse_from(["atfleet-node-agent", "--state-dir", "/s"]).expect("parses");
        assert!(e.simulate);
        assert_eq!(e.images.len(), 2);
        assert_eq!(e.max_pods, 7);
    }
}
