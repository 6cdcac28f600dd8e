//! A wire-compatible, durable, single-tenant atServer.
//!
//! The shape follows mini-redis: [`server`] accepts TLS connections and runs one [`session::Session`]
//! per connection (lines framed by `at_protocol::codec::LineCodec`); [`commands`] holds one module per verb family; [`store`]
//! is the SQLite-backed keystore, commit log and notification store, reached through a dedicated
//! thread so blocking calls never run on the async runtime.

pub mod clock;
pub mod commands;
pub mod config;
pub mod connection;
pub mod context;
pub mod crypto;
pub mod delivery;
pub mod error;
pub mod http;
pub mod jobs;
pub mod keystore;
pub mod limits;
pub mod metadata;
pub mod metrics;
pub mod notifications;
pub mod peer;
pub mod reply;
pub mod server;
pub mod session;
pub mod store;
pub mod streams;
pub mod tls;
pub mod util;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, Limits};
pub use server::{Handle, Server, StartError};

/// The protocol version this server reports in `info` and `stats:7`; clients gate features on it.
pub const COMPAT_VERSION: &str = "3.0.52";
