//! The atDirectory: answers the root protocol (atprotocol.md §2) from a bounded cache backed by Postgres,
//! and offers a registration REST API to the operator.

pub mod api;
pub mod cache;
pub mod coherence;
pub mod config;
pub mod db;
pub mod directory;
pub mod error;
pub mod health;
pub mod metrics;
pub mod root;
pub mod server;
pub mod tls;

pub use config::{Cli, Command, Config, LogFormat};
pub use error::Error;
pub use server::{start, Running};
