//! Server-to-server: outbound pol-authenticated connections to peers (§6.5), the inbound checks of
//! `from:@peer` + `pol`, owner lookups of other atSigns' data through the cache (§3.5, §7.4) and the
//! receiving side of notification delivery (§8.3).

pub mod cache;
pub mod connector;
pub mod inbound;
pub mod metrics;
pub mod receive;
pub mod settings;

pub use connector::{PeerError, Peers, Pooled};
pub use settings::PeerSettings;
