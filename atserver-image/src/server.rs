//! The listener: accepts TCP, enforces the connection limit and handshake timeout, runs sessions;
//! plus the background jobs (expiry sweep, idle reaper, certificate reload, stats notifications).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::commands::write;
use crate::config::Config;
use crate::crypto::generate_rsa_keypair;
use crate::delivery::engine::{Engine, EngineHandle};
use crate::limits::{AuthThrottle, Registry};
use crate::metrics::Metrics;
use crate::notifications::Hub;
use crate::peer::metrics::PeerMetrics;
use crate::peer::Peers;
use crate::session::{self, Session};
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

/// Queued notifications to other atSigns are handed here (the delivery engine in production).
pub trait PeerDelivery: Send + Sync {
    fn enqueue(&self, notification_id: &str, recipient: &str);
}

/// Only logs: notifications stay queued in the store (for embedders without delivery).
pub struct StoreQueue;

impl PeerDelivery for StoreQueue {
    fn enqueue(&self, notification_id: &str, recipient: &str) {
        tracing::debug!(
            id = notification_id,
            recipient,
            "notification queued for peer delivery"
        );
    }
}

/// Everything sessions share.
pub struct Shared {
    pub config: Config,
    pub clock: SharedClock,
    pub store: Store,
    pub hub: Hub,
    pub registry: Registry,
    pub throttle: AuthThrottle,
    pub metrics: Metrics,
    pub started_at: i64,
    pub delivery: Box<dyn PeerDelivery>,
    /// Outbound server-to-server connections, the pool and their metrics.
    pub peers: Peers,
    pub shutdown: CancellationToken,
    pub tls_up: std::sync::atomic::AtomicBool,
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
        write::sweep(&self.shared).await
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
        let peers = Peers::new(&config, config.peer.clone(), peer_metrics);
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
            config,
        });
        write::initialise(&shared, signing_keys)
            .await
            .map_err(|e| StartError::Init(e.to_string()))?;

        let reloader = CertReloader::new(&shared.config.tls_cert, &shared.config.tls_key)?;
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
        tasks.spawn(jobs::sweeper(shared.clone()));
        tasks.spawn(jobs::reaper(shared.clone()));
        tasks.spawn(jobs::cert_reload(shared.clone(), reloader));
        tasks.spawn(jobs::stats_notifications(shared.clone()));
        tasks.spawn(engine.run(shared.clone()));
        tasks.spawn(jobs::checkpointer(shared.clone()));
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
        conns.spawn(serve_connection(
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

async fn serve_connection(
    tcp: TcpStream,
    addr: SocketAddr,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) {
    let handshake =
        tokio::time::timeout(shared.config.limits.handshake_timeout, acceptor.accept(tcp));
    let mut tls = tokio::select! {
        _ = shared.shutdown.cancelled() => return,
        r = handshake => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(%addr, error = %e, "TLS handshake failed");
                shared.metrics.handshake_failures.inc();
                return;
            }
            Err(_) => {
                tracing::debug!(%addr, "TLS handshake timed out");
                shared.metrics.handshake_failures.inc();
                return;
            }
        },
    };
    let Some(_permit) = permit else {
        shared.metrics.rejected_connections.inc();
        let refusal = at_protocol::Response::error(
            at_protocol::ErrorCode::InboundConnectionLimit,
            "Inbound connection limit exceeded",
        );
        let _ = tls.write_all(refusal.to_line().as_bytes()).await;
        let _ = tls.shutdown().await;
        return;
    };
    let (id, conn) = shared
        .registry
        .register(shared.clock.now_millis(), &shared.shutdown);
    let mut session = Session::new(shared.clone(), addr, conn);
    session.peer_certs = tls.get_ref().1.peer_certificates().map(<[_]>::to_vec);
    session::run(session, tls).await;
    shared.registry.unregister(id);
}

mod jobs {
    use super::*;
    use crate::notifications::{Event, Operation};
    use std::path::{Path, PathBuf};
    use tokio::time::MissedTickBehavior;

    /// How often the WAL is checked for commits to copy into the database file.
    const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

    /// Copies committed WAL frames into the database from a second connection, so no commit on
    /// the store thread waits for a checkpoint (SQLite's automatic one runs inside the commit
    /// that crosses its threshold and holds every later store call). Passive: never blocks the
    /// writer; durability is unchanged (every commit is already synced in the WAL).
    pub async fn checkpointer(shared: Arc<Shared>) {
        let db = shared.store.path().to_path_buf();
        let mut wal = db.clone().into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let mut conn: Option<rusqlite::Connection> = None;
        // What start-up wrote waits for the next write: an idle server runs no checkpoint thread.
        let mut seen = wal_stamp(&wal);
        let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shared.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let stamp = wal_stamp(&wal);
            if stamp.is_none() || stamp == seen {
                continue;
            }
            let (path, taken) = (db.clone(), conn.take());
            match tokio::task::spawn_blocking(move || checkpoint(taken, &path)).await {
                Ok((kept, result)) => {
                    conn = kept;
                    match result {
                        Ok(()) => seen = stamp,
                        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
                    }
                }
                Err(e) => tracing::warn!(error = %e, "WAL checkpoint task failed"),
            }
        }
    }

    /// Size and modification time of the WAL: they change with every commit (the WAL only
    /// grows until a writer restarts it from the top, which rewrites it).
    fn wal_stamp(wal: &Path) -> Option<(u64, Option<std::time::SystemTime>)> {
        std::fs::metadata(wal)
            .ok()
            .map(|m| (m.len(), m.modified().ok()))
    }

    /// One passive checkpoint on `conn` (opened on first use); hands the connection back.
    fn checkpoint(
        conn: Option<rusqlite::Connection>,
        db: &Path,
    ) -> (Option<rusqlite::Connection>, rusqlite::Result<()>) {
        let conn = match conn {
            Some(c) => c,
            None => match rusqlite::Connection::open(db) {
                Ok(c) => c,
                Err(e) => return (None, Err(e)),
            },
        };
        let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        (Some(conn), result)
    }

    pub async fn sweeper(shared: Arc<Shared>) {
        let mut tick = tokio::time::interval(shared.config.sweep_interval);
        loop {
            tokio::select! {
                _ = shared.shutdown.cancelled() => return,
                _ = tick.tick() => {
                    if let Err(e) = write::sweep(&shared).await {
                        tracing::error!(error = %e, "expiry sweep failed");
                    }
                }
            }
        }
    }

    pub async fn reaper(shared: Arc<Shared>) {
        let limits = &shared.config.limits;
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let mut tick = tokio::time::interval(limits.reaper_interval);
        loop {
            tokio::select! {
                _ = shared.shutdown.cancelled() => return,
                _ = tick.tick() => {
                    let n = shared.registry.reap(
                        shared.clock.now_millis(),
                        ms(limits.idle_unauthenticated),
                        ms(limits.idle_authenticated),
                    );
                    if n > 0 {
                        tracing::debug!(closed = n, "idle connections reaped");
                    }
                }
            }
        }
    }

    pub async fn cert_reload(shared: Arc<Shared>, reloader: Arc<CertReloader>) {
        // The files were just loaded: the first check is one period away (an immediate one would
        // start a blocking-pool thread at every start for nothing).
        let every = shared.config.tls_reload_interval;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                _ = shared.shutdown.cancelled() => return,
                _ = tick.tick() => {
                    let r = reloader.clone();
                    if let Ok(true) = tokio::task::spawn_blocking(move || r.reload_if_changed()).await {
                        shared.metrics.cert_reloads.inc();
                    }
                }
            }
        }
    }

    pub async fn stats_notifications(shared: Arc<Shared>) {
        let Some(every) = shared.config.stats_notification_interval else {
            return;
        };
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = shared.shutdown.cancelled() => return,
                _ = tick.tick() => {
                    if let Ok(last) = shared.store.call(|db| db.last_commit_id()).await {
                        shared.hub.publish(Event::Stats { last_commit_id: last, operation: Operation::Update });
                    }
                }
            }
        }
    }
}
