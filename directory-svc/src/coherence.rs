//! Keeps this replica's cache in step with every other replica's writes, through the table trigger's
//! NOTIFY on the primary.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sqlx::postgres::{PgListener, PgPool};
use tokio_util::sync::CancellationToken;

use crate::cache::{Address, Cache};
use crate::db::CHANGES_CHANNEL;
use crate::metrics::{Metrics, OpLabel};

/// The trigger's payload (see the migrations).
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Change {
    Upsert {
        atsign: String,
        host: String,
        port: u16,
    },
    Delete {
        atsign: String,
    },
    Flush,
}

const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

fn apply(cache: &Cache, metrics: &Metrics, payload: &str) {
    let op = match serde_json::from_str::<Change>(payload) {
        Ok(Change::Upsert { atsign, host, port }) => {
            cache.apply_upsert(&atsign, Address { host, port });
            "upsert"
        }
        Ok(Change::Delete { atsign }) => {
            cache.apply_delete(&atsign);
            "delete"
        }
        Ok(Change::Flush) => {
            cache.clear();
            "flush"
        }
        Err(e) => {
            // Unknown shape: the safe reaction is to forget everything.
            tracing::warn!(error = %e, payload, "unreadable change notification; clearing the cache");
            cache.clear();
            "unreadable"
        }
    };
    metrics
        .cache_notifications
        .get_or_create(&OpLabel { op })
        .inc();
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANGES_CHANNEL).await?;
    Ok(listener)
}

/// Listens until cancelled, reconnecting with backoff. Whenever the listener (re)connects, changes may
/// have been missed, so the cache drops its not-found entries and revalidates found ones.
pub async fn run(pool: PgPool, cache: Arc<Cache>, metrics: Metrics, shutdown: CancellationToken) {
    let mut backoff = MIN_BACKOFF;
    loop {
        match connect(&pool).await {
            Ok(mut listener) => {
                backoff = MIN_BACKOFF;
                cache.invalidate_after_gap();
                metrics.change_listener_up.set(1);
                tracing::info!(
                    channel = CHANGES_CHANNEL,
                    "listening for registration changes"
                );
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        next = listener.try_recv() => match next {
                            Ok(Some(n)) => apply(&cache, &metrics, n.payload()),
                            Ok(None) => {
                                tracing::warn!("change listener lost its connection");
                                break;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "change listener failed");
                                break;
                            }
                        },
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "change listener cannot connect yet"),
        }
        metrics.change_listener_up.set(0);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cached;

    #[tokio::test(start_paused = true)]
    async fn payloads_update_the_cache() {
        let cache = Cache::new(10, Duration::from_secs(60), Duration::from_secs(5));
        let metrics = Metrics::new();
        apply(
            &cache,
            &metrics,
            r#"{"op":"upsert","atsign":"alice","host":"a.example","port":6464}"#,
        );
        let alice = Address {
            host: "a.example".into(),
            port: 6464,
        };
        assert_eq!(cache.get("alice"), Cached::Fresh(Some(alice)));
        apply(&cache, &metrics, r#"{"op":"delete","atsign":"alice"}"#);
        assert_eq!(cache.get("alice"), Cached::Absent);
        cache.store("bob", None, cache.generation());
        apply(&cache, &metrics, "not json");
        assert!(cache.is_empty());
    }
}
