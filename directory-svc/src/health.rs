//! Database health as `/readyz` and the lookup path see it: a background check, so probes never
//! turn into a query storm.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::metrics::Metrics;

/// The latest known database state. Cheap to clone.
#[derive(Clone)]
pub struct Health {
    up: Arc<AtomicBool>,
    metrics: Metrics,
}

impl Health {
    pub fn new(up: bool, metrics: Metrics) -> Self {
        metrics.db_up.set(i64::from(up));
        Self {
            up: Arc::new(AtomicBool::new(up)),
            metrics,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    fn set(&self, up: bool) {
        let was = self.up.swap(up, Ordering::Relaxed);
        self.metrics.db_up.set(i64::from(up));
        if was != up {
            if up {
                tracing::info!("database reachable again");
            } else {
                tracing::warn!("database unreachable; answering lookups from the cache");
            }
        }
    }

    /// A query failed: stop sending lookups to the database until the next check passes.
    pub fn report_failure(&self) {
        self.set(false);
    }

    /// Checks the primary every `interval` until cancelled.
    pub async fn run(self, db: Db, interval: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            let up = db.ping().await.is_ok();
            self.set(up);
        }
    }
}
