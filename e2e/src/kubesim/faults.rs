//! Fault injection for resilience tests: a share of writes fail with 500 or 409, and every request
//! can be slowed down.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

use super::error::ApiError;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultConfig {
    /// Probability (0.0–1.0) that a write fails with 500 InternalError.
    pub error_rate: f64,
    /// Probability (0.0–1.0) that a write fails with 409 Conflict.
    pub conflict_rate: f64,
    /// Added to every request before it is handled.
    pub latency: Duration,
}

/// Live fault settings, changeable while the server runs.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<Mutex<FaultConfig>>);

impl Faults {
    pub fn new(config: FaultConfig) -> Self {
        Self(Arc::new(Mutex::new(config)))
    }

    pub fn set(&self, config: FaultConfig) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = config;
    }

    pub fn get(&self) -> FaultConfig {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The injected failure for a write, if the dice say so.
    pub fn write_failure(&self) -> Option<ApiError> {
        let cfg = self.get();
        let mut rng = rand::thread_rng();
        if cfg.error_rate > 0.0 && rng.gen::<f64>() < cfg.error_rate {
            return Some(ApiError::internal("injected fault: internal error"));
        }
        if cfg.conflict_rate > 0.0 && rng.gen::<f64>() < cfg.conflict_rate {
            return Some(ApiError::conflict(
                "",
                "objects",
                "injected",
                "injected fault: conflict",
            ));
        }
        None
    }
}
