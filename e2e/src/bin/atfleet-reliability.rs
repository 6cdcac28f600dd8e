//! `atfleet-reliability`: kills, outages, API faults and hostile peers against the real binaries;
//! writes target/reliability/report.{json,md} and exits non-zero when a promise did not hold.

use std::path::PathBuf;

use anyhow::Result;
use atfleet_e2e::reliability::{self, Options, Scale};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "atfleet-reliability",
    about = "atfleet reliability suite: crash safety, directory outages, operator chaos, hostile network"
)]
struct Cli {
    /// Directory holding atserver, atdirectory, atfleet-operator and atfleet-node-agent.
    #[arg(long)]
    bin_dir: PathBuf,
    /// Where report.json, report.md and children.log go.
    #[arg(long, default_value = "target/reliability")]
    out: PathBuf,
    /// The short version `make test` runs: every check, few cycles.
    #[arg(long)]
    short: bool,
    /// Only these sections: crash, outage, chaos, hostile.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,kube_client::client::builder=off")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let report = reliability::run(Options {
        bin_dir: cli.bin_dir,
        out_dir: cli.out.clone(),
        scale: if cli.short { Scale::Short } else { Scale::Full },
        only: cli.only,
    })
    .await?;
    eprintln!(
        "atfleet-reliability: wrote {} and {}: {}",
        cli.out.join("report.json").display(),
        cli.out.join("report.md").display(),
        if report.passed() {
            "every promise held"
        } else {
            "a promise did NOT hold"
        }
    );
    if !report.passed() {
        std::process::exit(1);
    }
    Ok(())
}
