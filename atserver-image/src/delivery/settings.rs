//! Retry and quarantine tunables of the delivery engine.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Attempts per notification before it is marked `errored` (reference: 30).
    pub max_attempts: i64,
    /// First retry delay; doubled per failed attempt up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// How long an unreachable recipient is left alone; doubled per consecutive failure up to
    /// `max_backoff` (reference: a flat 10 s).
    pub quarantine: Duration,
    /// A periodic pass even without nudges (catches anything a nudge missed).
    pub poll_interval: Duration,
    /// Recipients served at the same time.
    pub parallel_recipients: usize,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            max_attempts: 30,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            quarantine: Duration::from_secs(10),
            poll_interval: Duration::from_secs(5),
            parallel_recipients: 8,
        }
    }
}

impl DeliverySettings {
    /// Delay after the `failures`-th consecutive failure (1-based): base × 2^(failures−1), capped.
    pub fn backoff(&self, base: Duration, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
        base.saturating_mul(factor).min(self.max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let s = DeliverySettings::default();
        let b = Duration::from_secs(1);
        assert_eq!(s.backoff(b, 1), Duration::from_secs(1));
        assert_eq!(s.backoff(b, 2), Duration::from_secs(2));
        assert_eq!(s.backoff(b, 5), Duration::from_secs(16));
        assert_eq!(s.backoff(b, 40), Duration::from_secs(300));
    }
}
