//! Assembles and starts every part of a directory process; used by the binary and by the tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState};
use crate::cache::Cache;
use crate::coherence;
use crate::config::Config;
use crate::db::Db;
use crate::directory::Directory;
use crate::error::Error;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::root::{RootServer, Settings, SourceLimiter};
use crate::tls::ReloadingCert;

/// How often the rate limiter forgets quiet sources.
const LIMITER_PRUNE_EVERY: Duration = Duration::from_secs(60);

/// A started directory. Dropping it does not stop it; call [`Running::shutdown`].
pub struct Running {
    pub root_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub directory: Directory,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Running {
    /// Signals every task to stop and waits for them.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Waits until a task ends on its own (which only happens on shutdown).
    pub async fn wait(&mut self) {
        self.tasks.join_next().await;
    }
}

/// Connects the database pools (lazily) from the configuration.
pub fn database(config: &Config, metrics: Metrics) -> Result<Db, Error> {
    let url = config.resolved_database_url().ok_or_else(|| {
        Error::Config(
            "--database-url (ATDIRECTORY_DATABASE_URL or DATABASE_URL) is required".into(),
        )
    })?;
    Db::new(
        &url,
        config.read_database_url.as_deref(),
        config.db_max_connections,
        config.db_timeout(),
        metrics,
    )
    .map_err(|e| Error::Config(format!("--database-url: {e}")))
}

fn read_token(config: &Config) -> Result<Arc<str>, Error> {
    let path = config.api_token_file.as_ref().ok_or_else(|| {
        Error::Config("--api-token-file (ATDIRECTORY_API_TOKEN_FILE) is required".into())
    })?;
    let token =
        std::fs::read_to_string(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    let token = token.trim();
    if token.is_empty() {
        return Err(Error::Config(format!(
            "--api-token-file {}: the file is empty",
            path.display()
        )));
    }
    Ok(Arc::from(token))
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(format!("{what} {addr}"), e))
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, Error> {
    listener
        .local_addr()
        .map_err(|e| Error::io("local address", e))
}

/// Migrates the database, binds both listeners and starts every background task.
pub async fn start(config: Config) -> Result<Running, Error> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Err(Error::Config(
            "--tls-cert and --tls-key (ATDIRECTORY_TLS_CERT/_KEY) are required".into(),
        ));
    };
    let certificate = ReloadingCert::load(cert, key)?;
    let acceptor = certificate.acceptor()?;
    let token = read_token(&config)?;
    let metrics = Metrics::new();
    let db = database(&config, metrics.clone())?;
    db.migrate().await?;

    let health = Health::new(true, metrics.clone());
    let cache = Arc::new(Cache::new(
        config.cache_capacity,
        config.cache_ttl(),
        config.negative_ttl(),
    ));
    let directory = Directory {
        cache: cache.clone(),
        db: db.clone(),
        health: health.clone(),
        metrics: metrics.clone(),
    };
    let limiter = Arc::new(SourceLimiter::new(
        config.rate_limit_per_second,
        config.rate_limit_burst,
    ));

    let root_listener = bind(config.listen, "--listen").await?;
    let http_listener = bind(config.http_listen, "--http-listen").await?;
    let root_addr = local_addr(&root_listener)?;
    let http_addr = local_addr(&http_listener)?;

    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    tasks.spawn(health.run(db.clone(), config.db_check_interval(), shutdown.clone()));
    tasks.spawn(coherence::run(
        db.primary().clone(),
        cache,
        metrics.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(certificate.watch(
        config.tls_reload_interval(),
        metrics.clone(),
        shutdown.clone(),
    ));
    {
        let limiter = limiter.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move { limiter.prune(LIMITER_PRUNE_EVERY, shutdown).await });
    }
    let root = RootServer {
        listener: root_listener,
        acceptor,
        directory: directory.clone(),
        limiter,
        settings: Settings {
            max_line: config.max_line,
            handshake_timeout: config.handshake_timeout(),
            idle_timeout: config.idle_timeout(),
            session_idle_timeout: config.session_idle_timeout(),
            miss_allowance: config.miss_allowance,
            miss_delay: config.miss_delay(),
        },
        max_connections: config.max_connections,
    };
    tasks.spawn(root.run(shutdown.clone()));
    let app = api::router(ApiState {
        directory: directory.clone(),
        token,
    });
    {
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let served = axum::serve(http_listener, app)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
    }
    tracing::info!(%root_addr, %http_addr, "atdirectory started");
    Ok(Running {
        root_addr,
        http_addr,
        directory,
        shutdown,
        tasks,
    })
}
