//! Runs kubesim until interrupted.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use atfleet_e2e::kubesim::{Config, Server};
use clap::Parser;

/// An in-memory Kubernetes API server for tests and local demos.
#[derive(Parser)]
#[command(name = "kubesim", version)]
struct Args {
    /// Address to listen on (plain HTTP).
    #[arg(long, env = "KUBESIM_LISTEN", default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Write a kubeconfig pointing at the server to this file.
    #[arg(long, env = "KUBESIM_KUBECONFIG_OUT")]
    kubeconfig_out: Option<PathBuf>,
    /// Change events kept for watch resumption.
    #[arg(long, env = "KUBESIM_HISTORY", default_value_t = 10_000)]
    history: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let config = Config {
        listen: args.listen,
        history_limit: args.history,
        ..Config::default()
    };
    let sim = Server::start(config).await.context("starting kubesim")?;
    if let Some(path) = &args.kubeconfig_out {
        sim.write_kubeconfig(path)
            .with_context(|| format!("--kubeconfig-out {}", path.display()))?;
    }
    println!("kubesim listening on {}", sim.url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    sim.shutdown().await;
    Ok(())
}
