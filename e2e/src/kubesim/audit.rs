//! A record of every request, readable by tests (who did what, and what came back).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection; or the
    /// lower-case HTTP method for non-resource paths.
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub path: String,
    pub user_agent: String,
    pub code: u16,
}

/// The most recent requests kept; older ones are dropped so long runs (demos) stay bounded.
pub const AUDIT_CAPACITY: usize = 100_000;

/// Shared, append-only log of the latest `AUDIT_CAPACITY` requests.
#[derive(Debug, Clone, Default)]
pub struct AuditLog(Arc<Mutex<VecDeque<AuditEvent>>>);

impl AuditLog {
    pub fn record(&self, event: AuditEvent) {
        let mut log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() >= AUDIT_CAPACITY {
            log.pop_front();
        }
        log.push_back(event);
    }

    /// A copy of everything recorded so far, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
