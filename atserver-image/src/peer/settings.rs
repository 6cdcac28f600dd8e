//! Tunables of server-to-server traffic.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PeerSettings {
    /// Authenticated connections kept per peer (in use plus idle).
    pub max_connections_per_peer: usize,
    /// An idle pooled connection older than this is closed instead of reused.
    pub idle_expiry: Duration,
    /// TCP + TLS + greeting.
    pub connect_timeout: Duration,
    /// from/pol and other handshake replies (§1.5: 3 s in the reference).
    pub handshake_timeout: Duration,
    /// Replies to lookups and scans (§1.5: 5 s).
    pub lookup_timeout: Duration,
    /// Replies to notification deliveries (§1.5: 10 s).
    pub notify_timeout: Duration,
    /// How often cached copies past their refreshAt are fetched again; `None` disables the job.
    pub cache_refresh_interval: Option<Duration>,
}

impl Default for PeerSettings {
    fn default() -> Self {
        PeerSettings {
            max_connections_per_peer: 4,
            idle_expiry: Duration::from_secs(599),
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(3),
            lookup_timeout: Duration::from_secs(5),
            notify_timeout: Duration::from_secs(10),
            cache_refresh_interval: Some(Duration::from_secs(3600)),
        }
    }
}
