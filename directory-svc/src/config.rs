//! Command-line flags (each with an `ATDIRECTORY_*` environment variable), as DESIGN.md fixes them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The atDirectory: the root protocol on TLS, a registration REST API, Postgres as the system of record.
#[derive(Debug, Clone, Parser)]
#[command(name = "atdirectory", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Apply the embedded database migrations and exit.
    Migrate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address of the root-protocol TLS listener.
    #[arg(long, env = "ATDIRECTORY_LISTEN", default_value = "0.0.0.0:64")]
    pub listen: SocketAddr,
    /// Address of the HTTP listener (registration API, /healthz, /readyz, /metrics).
    #[arg(long, env = "ATDIRECTORY_HTTP_LISTEN", default_value = "0.0.0.0:8080")]
    pub http_listen: SocketAddr,
    /// PEM certificate chain for the root listener; reloaded when the file changes.
    #[arg(long, env = "ATDIRECTORY_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for the root listener; reloaded when the file changes.
    #[arg(long, env = "ATDIRECTORY_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Postgres URL of the primary (system of record). Falls back to the plain DATABASE_URL variable.
    #[arg(long, env = "ATDIRECTORY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Optional Postgres URL of a read replica, used for lookups and API reads.
    #[arg(long, env = "ATDIRECTORY_READ_DATABASE_URL", hide_env_values = true)]
    pub read_database_url: Option<String>,
    /// File holding the bearer token the registration API requires.
    #[arg(long, env = "ATDIRECTORY_API_TOKEN_FILE")]
    pub api_token_file: Option<PathBuf>,
    /// Log output format.
    #[arg(
        long,
        env = "ATDIRECTORY_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// Most root-protocol connections open at once; further connections are closed on accept.
    #[arg(long, env = "ATDIRECTORY_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Longest accepted root-protocol line in bytes; a longer line closes the connection.
    #[arg(long, env = "ATDIRECTORY_MAX_LINE", default_value_t = 255)]
    pub max_line: usize,
    /// Time allowed for the TLS handshake, in milliseconds.
    #[arg(
        long,
        env = "ATDIRECTORY_HANDSHAKE_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub handshake_timeout_ms: u64,
    /// Idle time before a connection that has not looked anything up is closed, in milliseconds.
    #[arg(long, env = "ATDIRECTORY_IDLE_TIMEOUT_MS", default_value_t = 30_000)]
    pub idle_timeout_ms: u64,
    /// Idle time before a connection that has made lookups is closed, in milliseconds; 0 keeps it open
    /// (the Python SDK holds one root connection for its whole life and cannot reconnect).
    #[arg(long, env = "ATDIRECTORY_SESSION_IDLE_TIMEOUT_MS", default_value_t = 0)]
    pub session_idle_timeout_ms: u64,
    /// Not-found lookups per connection answered at once; later ones are delayed.
    #[arg(long, env = "ATDIRECTORY_MISS_ALLOWANCE", default_value_t = 1)]
    pub miss_allowance: u32,
    /// Delay before replying to a not-found lookup beyond the allowance, in milliseconds.
    #[arg(long, env = "ATDIRECTORY_MISS_DELAY_MS", default_value_t = 3_000)]
    pub miss_delay_ms: u64,
    /// Connections plus lookups per second allowed from one source address (token refill rate);
    /// 0 disables the limit.
    #[arg(long, env = "ATDIRECTORY_RATE_LIMIT_PER_SECOND", default_value_t = 50)]
    pub rate_limit_per_second: u32,
    /// Connections plus lookups a source address may burst before the rate limit applies.
    #[arg(long, env = "ATDIRECTORY_RATE_LIMIT_BURST", default_value_t = 200)]
    pub rate_limit_burst: u32,

    /// Most entries in the in-process lookup cache.
    #[arg(long, env = "ATDIRECTORY_CACHE_CAPACITY", default_value_t = 100_000)]
    pub cache_capacity: usize,
    /// Lifetime of a found entry before it is revalidated against the database, in milliseconds.
    #[arg(long, env = "ATDIRECTORY_CACHE_TTL_MS", default_value_t = 300_000)]
    pub cache_ttl_ms: u64,
    /// Lifetime of a not-found entry, in milliseconds.
    #[arg(long, env = "ATDIRECTORY_NEGATIVE_TTL_MS", default_value_t = 5_000)]
    pub negative_ttl_ms: u64,

    /// Most connections in each database pool.
    #[arg(long, env = "ATDIRECTORY_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,
    /// Time to wait for a database connection or query, in milliseconds.
    #[arg(long, env = "ATDIRECTORY_DB_TIMEOUT_MS", default_value_t = 3_000)]
    pub db_timeout_ms: u64,
    /// Interval between database health checks (what /readyz reports), in milliseconds.
    #[arg(
        long,
        env = "ATDIRECTORY_DB_CHECK_INTERVAL_MS",
        default_value_t = 2_000
    )]
    pub db_check_interval_ms: u64,
    /// Interval between checks of the certificate and key files for changes, in milliseconds.
    #[arg(
        long,
        env = "ATDIRECTORY_TLS_RELOAD_INTERVAL_MS",
        default_value_t = 5_000
    )]
    pub tls_reload_interval_ms: u64,
}

impl Config {
    /// The primary database URL: the flag or `ATDIRECTORY_DATABASE_URL`, else plain `DATABASE_URL`.
    pub fn resolved_database_url(&self) -> Option<String> {
        self.database_url
            .clone()
            .or_else(|| std::env::var("DATABASE_URL").ok())
            .filter(|u| !u.is_empty())
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
    pub fn session_idle_timeout(&self) -> Option<Duration> {
        (self.session_idle_timeout_ms > 0)
            .then(|| Duration::from_millis(self.session_idle_timeout_ms))
    }
    pub fn miss_delay(&self) -> Duration {
        Duration::from_millis(self.miss_delay_ms)
    }
    pub fn cache_ttl(&self) -> Duration {
        Duration::from_millis(self.cache_ttl_ms)
    }
    pub fn negative_ttl(&self) -> Duration {
        Duration::from_millis(self.negative_ttl_ms)
    }
    pub fn db_timeout(&self) -> Duration {
        Duration::from_millis(self.db_timeout_ms)
    }
    pub fn db_check_interval(&self) -> Duration {
        Duration::from_millis(self.db_check_interval_ms)
    }
    pub fn tls_reload_interval(&self) -> Duration {
        Duration::from_millis(self.tls_reload_interval_ms)
    }
}
