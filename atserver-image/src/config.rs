//! Server configuration (the binary builds it from flags and `ATSERVER_*` variables).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Connection limits and abuse controls.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Concurrent TLS connections; one more gets AT0012 and is closed.
    pub max_connections: usize,
    /// Idle time before an unauthenticated connection is closed.
    pub idle_unauthenticated: Duration,
    /// Idle time before an authenticated connection is closed.
    pub idle_authenticated: Duration,
    /// Longest accepted command line in bytes (AT0005 and close beyond it).
    pub max_line_len: usize,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Failed cram/pkam attempts after which a connection is closed.
    pub auth_failures_per_connection: u32,
    /// Failed cram/pkam attempts per source address within `auth_failure_window`
    /// after which that address is refused (AT0028) until the window passes.
    pub auth_failures_per_address: u32,
    pub auth_failure_window: Duration,
    /// How often the idle reaper runs.
    pub reaper_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 200,
            idle_unauthenticated: Duration::from_secs(600),
            idle_authenticated: Duration::from_secs(3600),
            max_line_len: 10_240_000,
            handshake_timeout: Duration::from_secs(10),
            auth_failures_per_connection: 5,
            auth_failures_per_address: 20,
            auth_failure_window: Duration::from_secs(300),
            reaper_interval: Duration::from_secs(5),
        }
    }
}

/// How long a notification lives when its sender gives no `ttln`: 15 minutes, the reference's
/// `notification.expiryInMins` default (at_server config.yaml).
pub const DEFAULT_NOTIFICATION_TTL_MS: i64 = 15 * 60 * 1000;

#[derive(Debug, Clone)]
pub struct Config {
    /// This server's atSign, normalised (`@alice`).
    pub atsign: String,
    pub listen: SocketAddr,
    /// Health and metrics; `None` disables the HTTP listener.
    pub http_listen: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// Trust anchors for peers' client certificates; without it no client certificate is requested.
    pub ca_bundle: Option<PathBuf>,
    /// `host:port` of the atDirectory (used by server-to-server features).
    pub root_server: Option<String>,
    /// The CRAM secret (read from `--cram-secret-file` by the binary).
    pub cram_secret: Option<String>,
    pub limits: Limits,
    /// How often the expiry sweep runs.
    pub sweep_interval: Duration,
    /// How often the certificate files are checked for changes.
    pub tls_reload_interval: Duration,
    /// Interval of stats notifications to monitors; `None` disables the periodic ones.
    pub stats_notification_interval: Option<Duration>,
    /// Lifetime of notifications without an explicit `ttln` (ms).
    pub notification_ttl_ms: i64,
    /// Server-to-server connections and caching.
    pub peer: crate::peer::settings::PeerSettings,
    /// Notification delivery retries and quarantine.
    pub delivery: crate::delivery::settings::DeliverySettings,
}

impl Config {
    /// A configuration with defaults for everything but the essentials.
    pub fn new(
        atsign: &str,
        data_dir: PathBuf,
        tls_cert: PathBuf,
        tls_key: PathBuf,
    ) -> Result<Self, at_protocol::AtSignError> {
        Ok(Config {
            atsign: at_protocol::AtSign::parse(atsign)?.as_str().to_owned(),
            listen: SocketAddr::from(([0, 0, 0, 0], 6464)),
            http_listen: None,
            data_dir,
            tls_cert,
            tls_key,
            ca_bundle: None,
            root_server: None,
            cram_secret: None,
            limits: Limits::default(),
            sweep_interval: Duration::from_secs(60),
            tls_reload_interval: Duration::from_secs(30),
            stats_notification_interval: Some(Duration::from_secs(15)),
            notification_ttl_ms: DEFAULT_NOTIFICATION_TTL_MS,
            peer: crate::peer::settings::PeerSettings::default(),
            delivery: crate::delivery::settings::DeliverySettings::default(),
        })
    }
}
