//! Outbound connections to other atServers: directory resolution, TLS with our certificate as the
//! client certificate, and a bounded per-peer pool of authenticated connections with idle expiry.
//! The `from:@me` + `pol` handshake that authenticates them is in `handshake.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use at_protocol::client::{AtConnection, ClientConfig, ClientError, RootClient, TlsOptions};
use at_protocol::crypto::RsaPrivateKey;
use at_protocol::{AtSign, ErrorCode};
use rustls::client::ResolvesClientCert;
use thiserror::Error;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::Config;
use crate::error::AtError;

use super::metrics::PeerMetrics;
use super::settings::PeerSettings;

#[derive(Debug, Error)]
pub enum PeerError {
    #[error("server-to-server traffic is not configured: {0}")]
    NotConfigured(&'static str),
    #[error("{0} is not registered in the atDirectory")]
    NotRegistered(String),
    #[error("atDirectory lookup of {atsign} failed: {source}")]
    Directory { atsign: String, source: ClientError },
    #[error("talking to {atsign}'s atServer: {source}")]
    Peer { atsign: String, source: ClientError },
    #[error("timed out while {0}")]
    Timeout(String),
    #[error("{atsign}'s atServer sent a pol challenge bound to {bound}")]
    WrongBinding { atsign: String, bound: String },
    #[error("server signing key: {0}")]
    SigningKey(String),
    #[error(transparent)]
    Local(#[from] AtError),
}

impl PeerError {
    /// True when the exchange failed below the protocol (I/O, closed, timeout): the connection
    /// is unusable, unlike a peer that answered with an error.
    pub fn transport(&self) -> bool {
        match self {
            PeerError::Timeout(_) => true,
            PeerError::Peer { source, .. } => source.server_code().is_none(),
            _ => false,
        }
    }

    /// True when the peer could not be reached at all (quarantine material), as opposed to a
    /// peer that answered with an error.
    pub fn unreachable(&self) -> bool {
        match self {
            PeerError::NotRegistered(_) | PeerError::Directory { .. } | PeerError::Timeout(_) => {
                true
            }
            PeerError::Peer { source, .. } => source.server_code().is_none(),
            _ => false,
        }
    }

    /// The atProtocol error code when the peer answered with one.
    pub fn server_code(&self) -> Option<ErrorCode> {
        match self {
            PeerError::Peer { source, .. } => source.server_code(),
            _ => None,
        }
    }
}

impl From<PeerError> for AtError {
    fn from(e: PeerError) -> Self {
        match e {
            PeerError::Local(e) => e,
            PeerError::NotRegistered(_)
            | PeerError::Directory { .. }
            | PeerError::NotConfigured(_) => {
                AtError::new(ErrorCode::SecondaryNotFound, e.to_string())
            }
            PeerError::Timeout(_) => AtError::new(ErrorCode::Timeout, e.to_string()),
            PeerError::Peer { ref source, .. } => match source.server_code() {
                Some(code) => AtError::new(code, e.to_string()),
                None => AtError::new(ErrorCode::SecondaryConnect, e.to_string()),
            },
            PeerError::WrongBinding { .. } => AtError::new(ErrorCode::Handshake, e.to_string()),
            PeerError::SigningKey(_) => AtError::new(ErrorCode::SecondaryConnect, e.to_string()),
        }
    }
}

/// Runs `fut` with a deadline, naming the step on timeout.
pub async fn timed<T>(
    limit: Duration,
    step: impl Into<String>,
    fut: impl std::future::Future<Output = Result<T, PeerError>>,
) -> Result<T, PeerError> {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| Err(PeerError::Timeout(step.into())))
}

/// An authenticated connection checked out of the pool; give it back with [`Peers::checkin`]
/// after a clean exchange, drop it after a failure.
pub struct Pooled {
    pub conn: AtConnection,
    pub peer: String,
    /// Taken from the idle list: the peer may have closed it since (e.g. it restarted), so a
    /// transport failure on it deserves one retry on a fresh connection.
    pub reused: bool,
    _permit: OwnedSemaphorePermit,
}

impl Pooled {
    /// A connection holding one slot of its peer's bound.
    pub(crate) fn new(
        conn: AtConnection,
        peer: String,
        reused: bool,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        Pooled {
            conn,
            peer,
            reused,
            _permit: permit,
        }
    }
}

struct Idle {
    conn: AtConnection,
    permit: OwnedSemaphorePermit,
    since: Instant,
}

/// Everything outbound: the client TLS settings, the directory client and the pool.
pub struct Peers {
    pub settings: PeerSettings,
    pub metrics: PeerMetrics,
    client: Option<ClientConfig>,
    root: Option<RootClient>,
    idle: Mutex<HashMap<String, Vec<Idle>>>,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// The server signing key, read from the keystore on first use.
    pub(crate) signing_key: OnceLock<RsaPrivateKey>,
}

/// Splits `host:port` (the last colon separates the port).
fn split_host_port(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

impl Peers {
    /// Builds the outbound side from the server configuration. Without a CA bundle or an
    /// atDirectory address the server still runs; peer operations then fail with a clear error.
    ///
    /// `client_cert` is the listener's reloading certificate: peers and the atDirectory see the same
    /// certificate as clients of this server, renewed without a restart.
    pub fn new(
        config: &Config,
        settings: PeerSettings,
        metrics: PeerMetrics,
        client_cert: Arc<dyn ResolvesClientCert>,
    ) -> Self {
        let client = match &config.ca_bundle {
            Some(ca) => TlsOptions::from_ca_pem_file(ca)
                .map(|t| t.with_client_cert_resolver(client_cert))
                .and_then(ClientConfig::new)
                .map(|c| {
                    c.with_connect_timeout(settings.connect_timeout)
                        .with_read_timeout(settings.lookup_timeout)
                        .with_response_timeout(settings.notify_timeout)
                })
                .map_err(|e| tracing::warn!(error = %e, "peer TLS configuration unusable"))
                .ok(),
            None => None,
        };
        let root = match (
            &client,
            config.root_server.as_deref().and_then(split_host_port),
        ) {
            (Some(c), Some((host, port))) => Some(RootClient::new(c.clone(), host, port)),
            _ => None,
        };
        Peers {
            settings,
            metrics,
            client,
            root,
            idle: Mutex::new(HashMap::new()),
            limits: Mutex::new(HashMap::new()),
            signing_key: OnceLock::new(),
        }
    }

    fn client(&self) -> Result<&ClientConfig, PeerError> {
        self.client.as_ref().ok_or(PeerError::NotConfigured(
            "no CA bundle for peer certificates",
        ))
    }

    /// `(host, port)` of `atsign`'s atServer from the atDirectory.
    pub async fn resolve(&self, atsign: &AtSign) -> Result<(String, u16), PeerError> {
        let root = self
            .root
            .as_ref()
            .ok_or(PeerError::NotConfigured("no atDirectory address"))?;
        let found = timed(
            self.settings.lookup_timeout,
            format!("resolving {atsign}"),
            async {
                root.lookup(atsign)
                    .await
                    .map_err(|source| PeerError::Directory {
                        atsign: atsign.to_string(),
                        source,
                    })
            },
        )
        .await?;
        found.ok_or_else(|| PeerError::NotRegistered(atsign.to_string()))
    }

    /// A fresh, unauthenticated connection to `atsign`'s atServer (greeting read).
    pub async fn connect(&self, atsign: &AtSign) -> Result<AtConnection, PeerError> {
        let client = self.client()?.clone();
        let (host, port) = self.resolve(atsign).await?;
        let conn = timed(
            self.settings.connect_timeout,
            format!("connecting to {atsign}'s atServer"),
            async {
                AtConnection::connect(&client, &host, port)
                    .await
                    .map_err(|source| PeerError::Peer {
                        atsign: atsign.to_string(),
                        source,
                    })
            },
        )
        .await?;
        self.metrics.outbound_connections.inc();
        Ok(conn)
    }

    pub(crate) fn limit_for(&self, peer: &str) -> Arc<Semaphore> {
        let mut limits = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        limits
            .entry(peer.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.settings.max_connections_per_peer)))
            .clone()
    }

    pub(crate) fn take_idle(&self, peer: &str) -> Option<(AtConnection, OwnedSemaphorePermit)> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(peer)?;
        while let Some(i) = list.pop() {
            if i.since.elapsed() < self.settings.idle_expiry {
                return Some((i.conn, i.permit));
            }
            // Expired: dropping it closes the socket and frees its slot.
        }
        None
    }

    /// Returns a connection that finished its exchange cleanly to the idle list.
    pub fn checkin(&self, pooled: Pooled) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.entry(pooled.peer).or_default().push(Idle {
            conn: pooled.conn,
            permit: pooled._permit,
            since: Instant::now(),
        });
    }

    /// Closes every idle connection whose idle time has passed.
    pub fn expire_idle(&self) -> usize {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let mut closed = 0;
        for list in idle.values_mut() {
            let before = list.len();
            list.retain(|i| i.since.elapsed() < self.settings.idle_expiry);
            closed += before - list.len();
        }
        idle.retain(|_, l| !l.is_empty());
        closed
    }

    /// Idle pooled connections to `peer` (for tests and metrics).
    pub fn idle_count(&self, peer: &str) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.get(peer).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_split() {
        assert_eq!(
            split_host_port("127.0.0.1:64"),
            Some(("127.0.0.1".into(), 64))
        );
        assert_eq!(split_host_port("[::1]:64"), Some(("::1".into(), 64)));
        assert_eq!(split_host_port("nohost"), None);
    }
}
