//! The `atserver` binary: flags (with `ATSERVER_*` environment fallbacks) → `Config` → server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use atserver::{Config, Limits, Server, SystemClock};
use clap::{Parser, ValueEnum};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// A wire-compatible, durable, single-tenant atServer.
#[derive(Parser, Debug)]
#[command(name = "atserver", version, about)]
struct Args {
    /// The atSign this server serves, e.g. @alice.
    #[arg(long, env = "ATSERVER_ATSIGN")]
    atsign: String,
    /// TLS listen address for the atProtocol.
    #[arg(long, env = "ATSERVER_LISTEN", default_value = "0.0.0.0:6464")]
    listen: SocketAddr,
    /// HTTP listen address for /healthz, /readyz and /metrics.
    #[arg(long, env = "ATSERVER_HTTP_LISTEN", default_value = "0.0.0.0:8080")]
    http_listen: SocketAddr,
    /// Directory holding the SQLite store (the pod's volume).
    #[arg(long, env = "ATSERVER_DATA_DIR")]
    data_dir: PathBuf,
    /// PEM certificate chain served to clients; reloaded when the file changes.
    #[arg(long, env = "ATSERVER_TLS_CERT")]
    tls_cert: PathBuf,
    /// PEM private key of the certificate; reloaded when the file changes.
    #[arg(long, env = "ATSERVER_TLS_KEY")]
    tls_key: PathBuf,
    /// PEM bundle of CAs trusted for peers' client certificates.
    #[arg(long, env = "ATSERVER_CA_BUNDLE")]
    ca_bundle: Option<PathBuf>,
    /// atDirectory address, host:port.
    #[arg(long, env = "ATSERVER_ROOT_SERVER")]
    root_server: Option<String>,
    /// File holding the CRAM secret (seeded at start unless onboarding disabled CRAM).
    #[arg(long, env = "ATSERVER_CRAM_SECRET_FILE")]
    cram_secret_file: Option<PathBuf>,
    /// Log output format.
    #[arg(long, env = "ATSERVER_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Maximum concurrent connections; more are refused with AT0012.
    #[arg(long, env = "ATSERVER_MAX_CONNECTIONS", default_value_t = 200)]
    max_connections: usize,
    /// Seconds before an idle unauthenticated connection is closed.
    #[arg(long, env = "ATSERVER_IDLE_TIMEOUT_SECS", default_value_t = 600)]
    idle_timeout_secs: u64,
    /// Seconds before an idle authenticated connection is closed.
    #[arg(long, env = "ATSERVER_AUTH_IDLE_TIMEOUT_SECS", default_value_t = 3600)]
    auth_idle_timeout_secs: u64,
    /// Longest accepted command line in bytes (AT0005 beyond).
    #[arg(long, env = "ATSERVER_MAX_LINE_BYTES", default_value_t = 10_240_000)]
    max_line_bytes: usize,
    /// Seconds allowed for a TLS handshake.
    #[arg(long, env = "ATSERVER_HANDSHAKE_TIMEOUT_SECS", default_value_t = 10)]
    handshake_timeout_secs: u64,
    /// Seconds between expiry sweeps.
    #[arg(long, env = "ATSERVER_SWEEP_INTERVAL_SECS", default_value_t = 60)]
    sweep_interval_secs: u64,
    /// Seconds between refreshes of cached copies of other atSigns' data past their refreshAt
    /// (0 disables the job).
    #[arg(long, env = "ATSERVER_CACHE_REFRESH_SECS", default_value_t = 3600)]
    cache_refresh_secs: u64,
    /// Pooled authenticated connections per peer atServer.
    #[arg(long, env = "ATSERVER_PEER_CONNECTIONS", default_value_t = 4)]
    peer_connections: usize,
    /// Delivery attempts per notification before it is marked errored.
    #[arg(long, env = "ATSERVER_DELIVERY_MAX_ATTEMPTS", default_value_t = 30)]
    delivery_max_attempts: i64,
    /// First retry delay of a failed delivery in ms (doubles per attempt).
    #[arg(long, env = "ATSERVER_DELIVERY_BACKOFF_MS", default_value_t = 1000)]
    delivery_backoff_ms: u64,
    /// Longest retry or quarantine delay in ms.
    #[arg(
        long,
        env = "ATSERVER_DELIVERY_MAX_BACKOFF_MS",
        default_value_t = 300_000
    )]
    delivery_max_backoff_ms: u64,
    /// How long an unreachable recipient is left alone at first, in ms (doubles per failure).
    #[arg(
        long,
        env = "ATSERVER_DELIVERY_QUARANTINE_MS",
        default_value_t = 10_000
    )]
    delivery_quarantine_ms: u64,
    /// Minutes a notification lives when its sender gives no ttln (the reference's
    /// notification.expiryInMins).
    #[arg(long, env = "ATSERVER_NOTIFICATION_EXPIRY_MINS", default_value_t = 15)]
    notification_expiry_mins: u32,
}

fn init_logging(format: LogFormat) {
    // `Targets` takes the usual `level` / `target=level,…` directives without EnvFilter's
    // regex engine, which would be built (and paged in) at every start for a fixed level.
    let filter = std::env::var("ATSERVER_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    // Colour only for people at a terminal; pods and files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.finish().with(filter).init(),
        LogFormat::Json => builder.json().finish().with(filter).init(),
    }
}

fn config(args: Args) -> Result<Config> {
    let mut c = Config::new(&args.atsign, args.data_dir, args.tls_cert, args.tls_key)
        .with_context(|| format!("--atsign: invalid atSign {:?}", args.atsign))?;
    c.listen = args.listen;
    c.http_listen = Some(args.http_listen);
    c.ca_bundle = args.ca_bundle;
    c.root_server = args.root_server;
    c.notification_ttl_ms = i64::from(args.notification_expiry_mins) * 60 * 1000;
    if let Some(path) = args.cram_secret_file {
        let secret = std::fs::read_to_string(&path)
            .with_context(|| format!("--cram-secret-file: cannot read {}", path.display()))?;
        let secret = secret.trim().to_string();
        anyhow::ensure!(
            !secret.is_empty(),
            "--cram-secret-file: {} is empty",
            path.display()
        );
        c.cram_secret = Some(secret);
    }
    let secs = std::time::Duration::from_secs;
    anyhow::ensure!(
        args.max_connections > 0,
        "--max-connections must be at least 1"
    );
    anyhow::ensure!(
        args.max_line_bytes >= 1024,
        "--max-line-bytes must be at least 1024"
    );
    c.limits = Limits {
        max_connections: args.max_connections,
        idle_unauthenticated: secs(args.idle_timeout_secs),
        idle_authenticated: secs(args.auth_idle_timeout_secs),
        max_line_len: args.max_line_bytes,
        handshake_timeout: secs(args.handshake_timeout_secs.max(1)),
        ..Limits::default()
    };
    c.sweep_interval = secs(args.sweep_interval_secs.max(1));
    anyhow::ensure!(
        args.peer_connections > 0,
        "--peer-connections must be at least 1"
    );
    c.peer.cache_refresh_interval =
        (args.cache_refresh_secs > 0).then(|| secs(args.cache_refresh_secs));
    c.peer.max_connections_per_peer = args.peer_connections;
    let ms = std::time::Duration::from_millis;
    c.delivery.max_attempts = args.delivery_max_attempts.max(1);
    c.delivery.initial_backoff = ms(args.delivery_backoff_ms.max(1));
    c.delivery.max_backoff = ms(args.delivery_max_backoff_ms.max(1));
    c.delivery.quarantine = ms(args.delivery_quarantine_ms.max(1));
    Ok(c)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    init_logging(args.log_format);
    let config = config(args)?;
    // Installed before anything is announced, so an early SIGTERM still shuts down gracefully.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let handle = Server::start(config, Arc::new(SystemClock))
        .await
        .context("starting the atserver")?;
    // Print the bound addresses so supervisors and tests using port 0 can find them.
    println!(
        "listening tls={} http={}",
        handle.tls_addr,
        handle.http_addr.map(|a| a.to_string()).unwrap_or_default()
    );
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt: shutting down"),
    }
    handle.shutdown().await;
    Ok(())
}
