//! `atdirectory`: run the directory, or `atdirectory migrate` to apply migrations and exit.

use std::process::ExitCode;

use anyhow::Context;
use atdirectory::{Cli, Command, LogFormat};
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line naming the bad setting, as every atfleet binary does.
            eprintln!("atdirectory: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, skipping causes a message already quotes (sqlx's do).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    init_logs(cli.config.log_format);
    if let Some(Command::Migrate) = cli.command {
        let db = atdirectory::server::database(&cli.config, atdirectory::metrics::Metrics::new())?;
        db.migrate().await.context("applying migrations")?;
        tracing::info!("migrations applied");
        return Ok(());
    }
    let mut running = atdirectory::start(cli.config)
        .await
        .context("starting atdirectory")?;
    tokio::select! {
        _ = terminated() => tracing::info!("shutting down"),
        _ = running.wait() => tracing::warn!("a server task ended unexpectedly; shutting down"),
    }
    running.shutdown().await;
    Ok(())
}
