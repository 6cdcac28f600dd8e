//! The listener: accepts TCP, enforces the connection limit and handshake timeout, runs sessions;
//! plus the background jobs (expiry sweep, idle reaper, certificate reload, stats notifications).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::connection;
use crate::context::Shared;
use crate::crypto::generate_rsa_keypair;
use crate::delivery::engine::{Engine, EngineHandle};
use crate::keystore;
use crate::limits::{AuthThrottle, Registry};
use crate::metrics::Metrics;
use crate::notifications::Hub;
use crate::peer::metrics::PeerMetrics;
use crate::peer::Peers;
use crate::store::{Store, StoreError};
use crate::tls::{self, CertReloader, TlsError};

#[derive(Debug, Error)]
pub enum StartError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("tls: {0}")]
    Tls(#[from] TlsError),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("initialising the keystore: {0}")]
    Init(String),
}

/// A running server.
pub struct Handle {
    pub tls_addr: SocketAddr,
    pub http_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    tasks: JoinSet<()>,
    store_thread: Option<std::thread::JoinHandle<()>>,
}

impl Handle {
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Runs one expiry sweep now (the periodic job does the same).
    pub async fn sweep_now(&self) -> Result<usize, StoreError> {
        keystore::sweep::sweep(&self.shared).await
    }

    /// Stops listening, closes every connection and waits for the background jobs.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.shared.store.close();
        let thread = self.store_thread.take();
        drop(self);
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }

    /// Resolves when shutdown was requested.
    pub async fn stopped(&self) {
        self.shared.shutdown.cancelled().await
    }
}

pub struct Server;

impl Server {
    /// Opens the store, seeds keys, binds the listeners and starts serving.
    pub async fn start(config: Config, clock: SharedClock) -> Result<Handle, StartError> {
        // On a first start, generate the signing key pair while the store is created (its fsyncs
        // leave the CPU idle); `initialise` still waits for it before anything listens.
        let signing_keys = Store::is_new(&config.data_dir)
            .then(|| tokio::task::spawn_blocking(generate_rsa_keypair));
        let (store, store_thread) = Store::open(&config.data_dir)?;
        let now = clock.now_millis();
        let throttle = AuthThrottle::new(
            clock.clone(),
            config.limits.auth_failures_per_address,
            i64::try_from(config.limits.auth_failure_window.as_millis()).unwrap_or(i64::MAX),
        );
        let mut metrics = Metrics::new();
        let peer_metrics = PeerMetrics::register(&mut metrics.registry);
        let reloader = CertReloader::new(&config.tls_cert, &config.tls_key)?;
        let peers = Peers::new(&config, config.peer.clone(), peer_metrics, reloader.clone());
        let engine = Engine::new(config.delivery.clone());
        let shared = Arc::new(Shared {
            throttle,
            clock,
            store,
            hub: Hub::new(),
            registry: Registry::default(),
            metrics,
            started_at: now,
            delivery: Box::new(EngineHandle(engine.clone())),
            peers,
            shutdown: CancellationToken::new(),
            tls_up: std::sync::atomic::AtomicBool::new(false),
            streams: Default::default(),
            config,
        });
        keystore::seed::initialise(&shared, signing_keys)
            .await
            .map_err(|e| StartError::Init(e.to_string()))?;

        let tls_config = tls::server_config(reloader.clone(), shared.config.ca_bundle.as_deref())?;
        let acceptor = TlsAcceptor::from(Arc::new(tls_config));
        let listen = shared.config.listen;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: listen,
                source,
            })?;
        let tls_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;

        let mut tasks = JoinSet::new();
        let http_addr = match shared.config.http_listen {
            Some(addr) => {
                let l = TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?;
                let bound = l
                    .local_addr()
                    .map_err(|source| StartError::Bind { addr, source })?;
                tasks.spawn(crate::http::serve(l, shared.clone()));
                Some(bound)
            }
            None => None,
        };
        shared
            .tls_up
            .store(true, std::sync::atomic::Ordering::SeqCst);
        tasks.spawn(accept_loop(listener, acceptor, shared.clone()));
        tasks.spawn(crate::jobs::sweeper(shared.clone()));
        tasks.spawn(crate::jobs::reaper(shared.clone()));
        tasks.spawn(crate::jobs::cert_reload(shared.clone(), reloader));
        tasks.spawn(crate::jobs::stats_notifications(shared.clone()));
        tasks.spawn(engine.run(shared.clone()));
        tasks.spawn(crate::store::checkpoint::checkpointer(
            shared.store.path().to_path_buf(),
            shared.shutdown.clone(),
        ));
        tasks.spawn(crate::peer::cache::refresh_job(shared.clone()));
        tracing::info!(atsign = %shared.config.atsign, %tls_addr, ?http_addr, "atserver listening");
        Ok(Handle {
            tls_addr,
            http_addr,
            shared,
            tasks,
            store_thread: Some(store_thread),
        })
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    let permits = Arc::new(Semaphore::new(shared.config.limits.max_connections));
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            a = listener.accept() => a,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (tcp, addr) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and similar: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let permit = permits.clone().try_acquire_owned().ok();
        conns.spawn(connection::serve(
            tcp,
            addr,
            acceptor.clone(),
            shared.clone(),
            permit,
        ));
    }
    shared
        .tls_up
        .store(false, std::sync::atomic::Ordering::SeqCst);
    // Sessions watch the shutdown token through their connection tokens; wait for them to finish.
    while conns.join_next().await.is_some() {}
}
