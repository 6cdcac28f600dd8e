//! `atfleet-bench`: runs the benchmarks against release binaries and writes target/bench/report.{json,md}.

use std::path::PathBuf;

use anyhow::{Context, Result};
use atfleet_e2e::bench::{self, Mode, Options};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "atfleet-bench",
    about = "atfleet benchmarks: figures against same-run baselines"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the benchmarks and write the report.
    Run {
        /// Directory holding the atserver, atdirectory and atfleet-operator binaries.
        #[arg(long)]
        bin_dir: PathBuf,
        /// Where report.json, report.md and the plots go.
        #[arg(long, default_value = "target/bench")]
        out: PathBuf,
        /// A tiny run that checks the harness end to end (numbers mean nothing).
        #[arg(long)]
        smoke: bool,
        /// PostgreSQL for the atDirectory benchmark (without it that figure is not measured).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Only these sections: throughput, notification, memory, startup, directory, operator.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Seconds spent building the binaries before this run (reported and counted against
        /// --limit-seconds).
        #[arg(long)]
        build_seconds: Option<f64>,
        /// Limit for build plus run; the report says whether the run kept to it.
        #[arg(long)]
        limit_seconds: Option<f64>,
    },
    /// The baseline: a bare rustls echo server on 127.0.0.1:0 (prints `listening <addr>`).
    ServeEcho {
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: PathBuf,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // The client logs each refused readiness poll while an apiserver starts.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("warn,kube_client::client::builder=off")
                }),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Cmd::ServeEcho { cert, key } => Ok(bench::echo::serve(&cert, &key).await?),
        Cmd::Run {
            bin_dir,
            out,
            smoke,
            database_url,
            only,
            build_seconds,
            limit_seconds,
        } => {
            let opts = Options {
                bin_dir,
                bench_exe: std::env::current_exe().context("locating atfleet-bench")?,
                out_dir: out.clone(),
                mode: if smoke { Mode::Smoke } else { Mode::Full },
                database_url,
                only,
                build_seconds,
                limit_seconds,
            };
            let report = bench::run(opts).await?;
            let missed = report
                .sections
                .iter()
                .flat_map(|s| &s.figures)
                .filter(|f| f.met == Some(false))
                .count();
            let not_measured: usize = report.sections.iter().map(|s| s.not_measured.len()).sum();
            eprintln!(
                "atfleet-bench: wrote {} and {} ({missed} figure(s) below target, {not_measured} not \
                 measured); {}",
                out.join("report.json").display(),
                out.join("report.md").display(),
                report.timing_text().replace("**", "")
            );
            Ok(())
        }
    }
}
