//! The server's periodic jobs: the expiry sweep, the idle-connection reaper, certificate reload
//! and stats notifications.

use std::sync::Arc;
use std::time::Duration;

use crate::context::Shared;
use crate::keystore;
use crate::notifications::{Event, Operation};
use crate::tls::CertReloader;

pub async fn sweeper(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.config.sweep_interval);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {
                if let Err(e) = keystore::sweep::sweep(&shared).await {
                    tracing::error!(error = %e, "expiry sweep failed");
                }
            }
        }
    }
}

pub async fn reaper(shared: Arc<Shared>) {
    let limits = &shared.config.limits;
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let mut tick = tokio::time::interval(limits.reaper_interval);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {
                let n = shared.registry.reap(
                    shared.clock.now_millis(),
                    ms(limits.idle_unauthenticated),
                    ms(limits.idle_authenticated),
                );
                if n > 0 {
                    tracing::debug!(closed = n, "idle connections reaped");
                }
            }
        }
    }
}

pub async fn cert_reload(shared: Arc<Shared>, reloader: Arc<CertReloader>) {
    // The files were just loaded: the first check is one period away (an immediate one would
    // start a blocking-pool thread at every start for nothing).
    let every = shared.config.tls_reload_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {
                let r = reloader.clone();
                if let Ok(true) = tokio::task::spawn_blocking(move || r.reload_if_changed()).await {
                    shared.metrics.cert_reloads.inc();
                }
            }
        }
    }
}

pub async fn stats_notifications(shared: Arc<Shared>) {
    let Some(every) = shared.config.stats_notification_interval else {
        return;
    };
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {
                if let Ok(last) = shared.store.call(|db| db.last_commit_id()).await {
                    shared.hub.publish(Event::Stats { last_commit_id: last, operation: Operation::Update });
                }
            }
        }
    }
}
