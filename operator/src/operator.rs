//! One operator replica: optionally wait for the leader lease, run the controller while
//! leading, stop it the moment leadership is lost, and hand the lease over on shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::controller::{self, Context};
use crate::leader::{Held, LeaderElector};

/// How long reconciles in flight may take to finish once this replica stops leading.
const CONTROLLER_STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs until `shutdown` is cancelled.
pub async fn run(
    ctx: Arc<Context>,
    elector: Option<LeaderElector>,
    ready: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let Some(elector) = elector else {
        ready.store(true, Ordering::Relaxed);
        ctx.metrics.leader.set(1);
        controller::run(ctx.clone(), shutdown).await;
        ctx.metrics.leader.set(0);
        return;
    };
    // A standby is healthy and ready: it is doing its job by waiting.
    ready.store(true, Ordering::Relaxed);
    loop {
        tracing::info!(
            identity = elector.identity(),
            "waiting for the leader lease"
        );
        if elector
            .acquire(shutdown.clone().cancelled_owned())
            .await
            .is_none()
        {
            return;
        }
        tracing::info!(identity = elector.identity(), "became leader");
        ctx.metrics.leader.set(1);
        let stop_controller = shutdown.child_token();
        let running = tokio::spawn(controller::run(ctx.clone(), stop_controller.clone()));
        let held = elector.hold(shutdown.clone().cancelled_owned()).await;
        stop_controller.cancel();
        // Reconciles in flight get a bounded time to finish. kube-runtime's graceful shutdown
        // can wait on a watch that has not delivered its first page yet (a stop right after
        // taking the lease), and a stop must not hang on that: the lease is released either way.
        let abort = running.abort_handle();
        match tokio::time::timeout(CONTROLLER_STOP_GRACE, running).await {
            Ok(Err(e)) if !e.is_cancelled() => {
                tracing::error!(error = %e, "controller task failed")
            }
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(
                    "the controller did not stop within {} s; stopping it",
                    CONTROLLER_STOP_GRACE.as_secs()
                );
                abort.abort();
            }
        }
        ctx.metrics.leader.set(0);
        // A standby reconciles nothing: its queue figures would only grow stale.
        ctx.metrics.queue_cleared();
        match held {
            Held::Stopped => {
                if let Err(e) = elector.release().await {
                    tracing::warn!(error = %e, "could not release the leader lease");
                }
                tracing::info!("released the leader lease");
                return;
            }
            Held::Lost => tracing::warn!("lost the leader lease; back to standby"),
        }
    }
}
