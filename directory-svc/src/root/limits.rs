//! Per-source rate limit: a token bucket per client IP address (GCRA via `governor`).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

pub struct SourceLimiter {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl SourceLimiter {
    /// `per_second == 0` disables the limit.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self { limiter }
    }

    /// Takes one token for `source`; false when its bucket is empty.
    pub fn allow(&self, source: IpAddr) -> bool {
        self.limiter
            .as_ref()
            .is_none_or(|l| l.check_key(&source).is_ok())
    }

    /// Forgets sources whose buckets are full again, so the map stays bounded by recent sources.
    pub async fn prune(&self, every: Duration, shutdown: CancellationToken) {
        let Some(limiter) = &self.limiter else {
            // Nothing to prune; still live until shutdown like every other server task.
            shutdown.cancelled().await;
            return;
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refused_per_source() {
        let l = SourceLimiter::new(1, 3);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        assert!((0..3).all(|_| l.allow(a)));
        assert!(!l.allow(a));
        assert!(l.allow(b));
        let off = SourceLimiter::new(0, 0);
        assert!((0..1000).all(|_| off.allow(a)));
    }
}
