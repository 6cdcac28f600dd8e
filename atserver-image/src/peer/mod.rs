//! Server-to-server, outbound: pol-authenticated connections to peers (§6.5) and owner lookups
//! of other atSigns' data through the cache (§3.5, §7.4). The verbs peers send us (`from:@peer`,
//! `pol`, a delivered `notify:`) are handled under `commands/`.

pub mod cache;
pub mod connector;
pub mod handshake;
pub mod introduce;
pub mod metrics;
pub mod public_key;
pub mod remote;
pub mod settings;

pub use connector::{PeerError, Peers, Pooled};
pub use settings::PeerSettings;
