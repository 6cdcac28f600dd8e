//! The context every connection and background job shares: configuration, clock, store,
//! event hub, connection registry, metrics and the outbound peer pool.

use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::limits::{AuthThrottle, Registry};
use crate::metrics::Metrics;
use crate::notifications::Hub;
use crate::peer::connector::Peers;
use crate::store::Store;

/// Queued notifications to other atSigns are handed here (the delivery engine in production).
pub trait PeerDelivery: Send + Sync {
    fn enqueue(&self, notification_id: &str, recipient: &str);
}

/// Only logs: notifications stay queued in the store (for embedders without delivery).
pub struct StoreQueue;

impl PeerDelivery for StoreQueue {
    fn enqueue(&self, notification_id: &str, recipient: &str) {
        tracing::debug!(
            id = notification_id,
            recipient,
            "notification queued for peer delivery"
        );
    }
}

/// Everything sessions share.
pub struct Shared {
    pub config: Config,
    pub clock: SharedClock,
    pub store: Store,
    pub hub: Hub,
    pub registry: Registry,
    pub throttle: AuthThrottle,
    pub metrics: Metrics,
    pub started_at: i64,
    pub delivery: Box<dyn PeerDelivery>,
    /// Outbound server-to-server connections, the pool and their metrics.
    pub peers: Peers,
    pub shutdown: CancellationToken,
    pub tls_up: std::sync::atomic::AtomicBool,
    /// Open `stream:` transfers, by stream id.
    pub streams: crate::streams::StreamRelay,
}
