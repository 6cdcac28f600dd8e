//! The root protocol on TLS: accept loop with connection cap, then one session per connection.

mod limits;
mod session;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::directory::Directory;

pub use limits::SourceLimiter;
pub use session::Settings;

pub struct RootServer {
    pub listener: TcpListener,
    pub acceptor: TlsAcceptor,
    pub directory: Directory,
    pub limiter: Arc<SourceLimiter>,
    pub settings: Settings,
    pub max_connections: usize,
}

impl RootServer {
    pub async fn run(self, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.max_connections));
        let shared = Arc::new(session::Shared {
            acceptor: self.acceptor,
            directory: self.directory,
            limiter: self.limiter,
            settings: self.settings,
        });
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = self.listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                shared.directory.metrics.reject("max_connections");
                drop(tcp);
                continue;
            };
            // A connection costs a token too, before the (expensive) TLS handshake.
            if !shared.limiter.allow(peer.ip()) {
                shared.directory.metrics.reject("rate_limited");
                drop(tcp);
                continue;
            }
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "set_nodelay failed");
            }
            let shared = shared.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let metrics = shared.directory.metrics.clone();
                metrics.root_connections.inc();
                session::run(&shared, tcp, peer, shutdown).await;
                metrics.root_connections.dec();
                drop(permit);
            });
        }
    }
}
