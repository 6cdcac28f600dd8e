//! Async TLS client for atServers and the atDirectory (tokio + rustls).
//!
//! [`AtConnection`] speaks to an atServer: greeting, request/response framing (§1.2/§1.4), the
//! authentication flows (CRAM, PKAM, and the `from`/`pol` pieces of server-to-server), and monitor
//! streams via [`MonitorConnection`]. [`RootClient`] resolves atSigns through an atDirectory over one
//! reused connection. Every network step has a timeout; errors name the step that failed.

mod auth;
mod config;
mod connection;
mod error;
mod framing;
mod monitor;
mod root;
mod transport;

pub use auth::{pkam_command, PolChallenge};
pub use config::{ClientConfig, TlsOptions};
pub use connection::AtConnection;
pub use error::ClientError;
pub use monitor::MonitorConnection;
pub use root::RootClient;
