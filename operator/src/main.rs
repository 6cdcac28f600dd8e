//! `atfleet-operator`: reconciles Atsigns into registered, TLS-secured atServers.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use atfleet_operator::controller::{Config, Context};
use atfleet_operator::directory::DirectoryClient;
use atfleet_operator::http::{router, HttpState};
use atfleet_operator::leader::{LeaderElector, LeaseConfig};
use atfleet_operator::metrics::Metrics;
use atfleet_operator::resolve::Defaults;
use clap::{Parser, ValueEnum};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Parser)]
#[command(
    name = "atfleet-operator",
    version,
    about = "Reconciles Atsign resources into registered, TLS-secured atServers"
)]
struct Args {
    /// Base URL of the atDirectory's registration API (http:// or https://). Without it,
    /// nothing is registered.
    #[arg(long, env = "ATFLEET_OPERATOR_DIRECTORY_URL")]
    directory_url: Option<String>,
    /// File holding the directory API's bearer token.
    #[arg(long, env = "ATFLEET_OPERATOR_DIRECTORY_TOKEN_FILE")]
    directory_token_file: Option<PathBuf>,
    /// PEM bundle trusted for an https directory URL (else the platform's roots).
    #[arg(long, env = "ATFLEET_OPERATOR_DIRECTORY_CA_FILE")]
    directory_ca_file: Option<PathBuf>,
    /// Owner id prefix registrations are fenced with; distinct per operator installation.
    #[arg(
        long,
        env = "ATFLEET_OPERATOR_DIRECTORY_OWNER",
        default_value = "atfleet"
    )]
    directory_owner: String,
    /// Namespace to watch (repeatable); all namespaces when absent.
    #[arg(
        long = "watch-namespace",
        env = "ATFLEET_OPERATOR_WATCH_NAMESPACE",
        value_delimiter = ','
    )]
    watch_namespaces: Vec<String>,
    /// Address for /healthz, /readyz and /metrics.
    #[arg(
        long,
        env = "ATFLEET_OPERATOR_HTTP_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    http_listen: SocketAddr,
    /// Run as one of several replicas; only the holder of the Lease reconciles.
    #[arg(long, env = "ATFLEET_OPERATOR_LEADER_ELECTION")]
    leader_election: bool,
    /// Log lines as human-readable text (coloured only on a terminal) or as one JSON object per line.
    #[arg(
        long,
        env = "ATFLEET_OPERATOR_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    /// The operator's own namespace: the leader Lease and the built-in CA Secret live here.
    #[arg(
        long,
        env = "ATFLEET_OPERATOR_NAMESPACE",
        default_value = "atfleet-system"
    )]
    namespace: String,
    /// This replica's identity for leader election and events (defaults to the host name).
    #[arg(long, env = "ATFLEET_OPERATOR_IDENTITY")]
    identity: Option<String>,
    /// atServer image when neither the Atsign nor its class names one.
    #[arg(
        long,
        env = "ATFLEET_OPERATOR_ATSERVER_IMAGE",
        default_value = "ghcr.io/atfleet/atserver:latest"
    )]
    atserver_image: String,
    /// The atDirectory's root-protocol address the atServers resolve peers through.
    #[arg(
        long,
        env = "ATFLEET_OPERATOR_ROOT_SERVER",
        default_value = "atdirectory.atfleet-system.svc.cluster.local:64"
    )]
    root_server: String,
    /// The cluster's DNS domain, used in the host names ClusterIP atServers are published under
    /// (`<name>.<namespace>.svc.<domain>`).
    #[arg(
        long,
        env = "ATFLEET_OPERATOR_CLUSTER_DOMAIN",
        default_value = "cluster.local"
    )]
    cluster_domain: String,
    /// Volume size when neither the Atsign nor its class sets one.
    #[arg(
        long,
        env = "ATFLEET_OPERATOR_DEFAULT_STORAGE_SIZE",
        default_value = "1Gi"
    )]
    default_storage_size: String,
    /// Atsigns reconciled at the same time.
    #[arg(long, env = "ATFLEET_OPERATOR_CONCURRENCY", default_value_t = 16)]
    concurrency: u16,
    /// Seconds between routine re-checks of a settled Atsign.
    #[arg(long, env = "ATFLEET_OPERATOR_RESYNC_SECONDS", default_value_t = 300)]
    resync_seconds: u64,
    /// PEM file of CAs every atServer trusts besides the operator's own (the fleet's trust bundle:
    /// the atDirectory's CA and any extra CAs; the chart mounts its `trustBundle` ConfigMap here).
    #[arg(long, env = "ATFLEET_OPERATOR_TRUST_BUNDLE_FILE")]
    trust_bundle_file: Option<std::path::PathBuf>,
    /// Leader lease duration in seconds.
    #[arg(long, env = "ATFLEET_OPERATOR_LEASE_SECONDS", default_value_t = 15)]
    lease_seconds: u64,
    /// An AtServerClass manifest (YAML) to server-side apply at start and keep: the chart's default
    /// class. It is created or updated, never deleted.
    #[arg(long, env = "ATFLEET_OPERATOR_DEFAULT_CLASS_FILE")]
    default_class_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing(args.log_format);
    if args.lease_seconds < 3 {
        bail!(
            "--lease-seconds must be at least 3, got {}",
            args.lease_seconds
        );
    }
    let token = match &args.directory_token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("--directory-token-file {}", path.display()))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let ca = match &args.directory_ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("--directory-ca-file {}", path.display()))?,
        ),
        None => None,
    };
    let directory = match &args.directory_url {
        Some(url) => {
            Some(DirectoryClient::new(url, token, ca.as_deref()).context("--directory-url")?)
        }
        None => {
            tracing::warn!("no --directory-url: Atsigns will not be registered");
            None
        }
    };
    let trust_bundle = match &args.trust_bundle_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("--trust-bundle-file {}", path.display()))?,
        None => String::new(),
    };
    // Read before connecting, so a bad file stops the operator with a clear error at once.
    let default_class = match &args.default_class_file {
        Some(path) => {
            Some(atfleet_operator::default_class::load(path).context("--default-class-file")?)
        }
        None => None,
    };
    let identity = args.identity.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "atfleet-operator".into());
        format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
    });
    let mut kube_config = kube::Config::infer()
        .await
        .context("finding the Kubernetes API")?;
    // Name ourselves in API server audit logs.
    kube_config.headers.push((
        hyper::header::USER_AGENT,
        hyper::header::HeaderValue::from_static(concat!(
            "atfleet-operator/",
            env!("CARGO_PKG_VERSION")
        )),
    ));
    let metrics = Arc::new(Metrics::new());
    // Every request through one layer that counts the failed ones.
    let client = kube::client::ClientBuilder::try_from(kube_config)
        .context("connecting to Kubernetes")?
        .with_layer(&atfleet_operator::api_errors::ApiErrorsLayer::new(
            metrics.clone(),
        ))
        .build();
    let config = Config {
        defaults: Defaults {
            image: args.atserver_image,
            root_server: args.root_server,
            cluster_domain: args.cluster_domain,
            storage_size: args.default_storage_size,
            trust_bundle,
            ..Defaults::default()
        },
        owner_id: args.directory_owner,
        ca_namespace: args.namespace.clone(),
        watch_namespaces: args.watch_namespaces,
        concurrency: args.concurrency.max(1),
        resync: Duration::from_secs(args.resync_seconds.max(10)),
        instance: Some(identity.clone()),
        ..Config::default()
    };
    let shutdown = CancellationToken::new();
    if let Some(class) = default_class {
        tokio::spawn(atfleet_operator::default_class::apply_until_done(
            client.clone(),
            class,
            shutdown.clone(),
        ));
    }
    let ctx = Context::new(client.clone(), config, directory, metrics.clone());
    let elector = args.leader_election.then(|| {
        LeaderElector::new(
            client,
            LeaseConfig {
                namespace: args.namespace,
                name: "atfleet-operator-leader".into(),
                identity,
                lease_duration: Duration::from_secs(args.lease_seconds),
                renew_interval: Duration::from_secs(args.lease_seconds / 3),
            },
        )
    });

    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(args.http_listen)
        .await
        .with_context(|| format!("--http-listen {}", args.http_listen))?;
    let http_addr = listener.local_addr().unwrap_or(args.http_listen);
    tracing::info!("serving /healthz, /readyz and /metrics on http://{http_addr} (--http-listen)");
    let http_stop = shutdown.clone();
    let http_state = HttpState {
        metrics,
        ready: ready.clone(),
    };
    let http = tokio::spawn(async move {
        axum::serve(listener, router(http_state))
            .with_graceful_shutdown(async move { http_stop.cancelled().await })
            .await
    });
    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        signals.cancel();
    });
    atfleet_operator::operator::run(ctx, elector, ready, shutdown.clone()).await;
    shutdown.cancel();
    http.await.context("HTTP task")?.context("HTTP server")?;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    // Colour codes only for a person at a terminal, never into a log file or collector.
    let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
