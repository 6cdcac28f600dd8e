//! Async TLS client for atServers and the atDirectory (tokio + rustls).
//!
//! [`AtConnection`] speaks to an atServer: greeting, request/response framing (§1.2/§1.4), the
//! authentication flows (CRAM, PKAM, and the `from`/`pol` pieces of server-to-server), and monitor
//! streams via [`MonitorConnection`]. [`RootClient`] resolves atSigns through an atDirectory over one
//! reused connection. Every network step has a timeout; errors name the step that failed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use at_protocol::client::{AtConnection, ClientConfig, RootClient, TlsOptions};
//! use at_protocol::crypto::AtKeysFile;
//! use at_protocol::crypto::PkamSigner;
//! use at_protocol::AtSign;
//!
//! let config = ClientConfig::new(TlsOptions::from_ca_pem_file("ca.pem".as_ref())?)?;
//! let alice = AtSign::parse("@alice")?;
//! let root = RootClient::new(config.clone(), "root.example", 64);
//! let (host, port) = root.lookup(&alice).await?.ok_or("unknown atSign")?;
//! let keys = AtKeysFile::load("@alice_key.atKeys".as_ref())?.decrypt()?;
//! let mut conn = AtConnection::connect(&config, &host, port).await?;
//! conn.authenticate_pkam(&alice, &PkamSigner::rsa(keys.pkam.private_key().clone()), None)
//!     .await?;
//! let value = conn.send_data("llookup:public:phone@alice").await?;
//! # let _ = value;
//! # Ok(())
//! # }
//! ```

mod auth;
mod config;
mod connection;
mod error;
mod framing;
mod monitor;
mod root;
mod transport;

pub use auth::{bound_challenge, challenge_binding, pkam_command, ChallengeBinding, PolChallenge};
pub use config::{ClientConfig, TlsOptions};
pub use connection::AtConnection;
pub use error::ClientError;
pub use monitor::MonitorConnection;
pub use root::RootClient;
