//! Resolving an atSign to an address: cache first, then the database, and the cache alone when the
//! database is unreachable.

use std::sync::Arc;

use crate::cache::{Address, Cache, Cached};
use crate::db::Db;
use crate::health::Health;
use crate::metrics::Metrics;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Found(Address),
    NotFound,
    /// Not in the cache and the database cannot be asked.
    Unavailable,
}

#[derive(Clone)]
pub struct Directory {
    pub cache: Arc<Cache>,
    pub db: Db,
    pub health: Health,
    pub metrics: Metrics,
}

impl Directory {
    /// `name` is a normalised atSign without `@`.
    pub async fn resolve(&self, name: &str) -> Resolution {
        let stale = match self.cache.get(name) {
            Cached::Fresh(answer) => {
                self.metrics.cache_hits.inc();
                return answer.map_or(Resolution::NotFound, Resolution::Found);
            }
            Cached::Stale(address) => Some(address),
            Cached::Absent => None,
        };
        if !self.health.is_up() {
            return match stale {
                Some(address) => {
                    self.metrics.cache_hits.inc();
                    Resolution::Found(address)
                }
                None => Resolution::Unavailable,
            };
        }
        self.metrics.cache_misses.inc();
        let seen = self.cache.generation();
        match self.db.lookup(name).await {
            Ok(row) => {
                let address = row.map(|(host, port)| Address { host, port });
                self.cache.store(name, address.clone(), seen);
                address.map_or(Resolution::NotFound, Resolution::Found)
            }
            Err(_) => {
                self.health.report_failure();
                stale.map_or(Resolution::Unavailable, Resolution::Found)
            }
        }
    }
}
