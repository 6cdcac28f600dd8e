//! Connection registry (for the idle reaper, stats and metrics) and failed-auth throttling.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;

/// What a connection is, for idle limits and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnKind {
    Anonymous = 0,
    Owner = 1,
    Peer = 2,
}

impl ConnKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnKind::Anonymous => "anonymous",
            ConnKind::Owner => "owner",
            ConnKind::Peer => "peer",
        }
    }
}

/// Per-connection state shared with the reaper.
#[derive(Debug)]
pub struct ConnEntry {
    pub last_active: AtomicI64,
    kind: AtomicU8,
    pub cancel: CancellationToken,
    /// Enrollment id for APKAM connections (revocation drops them).
    pub enrollment: Mutex<Option<String>>,
}

impl ConnEntry {
    pub fn kind(&self) -> ConnKind {
        match self.kind.load(Ordering::Relaxed) {
            1 => ConnKind::Owner,
            2 => ConnKind::Peer,
            _ => ConnKind::Anonymous,
        }
    }
    pub fn set_kind(&self, kind: ConnKind) {
        self.kind.store(kind as u8, Ordering::Relaxed);
    }
    pub fn touch(&self, now: i64) {
        self.last_active.store(now, Ordering::Relaxed);
    }
}

#[derive(Default)]
pub struct Registry {
    next: AtomicI64,
    conns: Mutex<HashMap<i64, Arc<ConnEntry>>>,
}

impl Registry {
    pub fn register(&self, now: i64, parent: &CancellationToken) -> (i64, Arc<ConnEntry>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(ConnEntry {
            last_active: AtomicI64::new(now),
            kind: AtomicU8::new(0),
            cancel: parent.child_token(),
            enrollment: Mutex::new(None),
        });
        if let Ok(mut m) = self.conns.lock() {
            m.insert(id, entry.clone());
        }
        (id, entry)
    }

    pub fn unregister(&self, id: i64) {
        if let Ok(mut m) = self.conns.lock() {
            m.remove(&id);
        }
    }

    pub fn snapshot(&self) -> Vec<Arc<ConnEntry>> {
        self.conns
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn count(&self) -> usize {
        self.conns.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Cancels connections idle for longer than their kind allows; returns how many.
    pub fn reap(&self, now: i64, idle_anon_ms: i64, idle_auth_ms: i64) -> usize {
        let mut n = 0;
        for c in self.snapshot() {
            let limit = if c.kind() == ConnKind::Anonymous {
                idle_anon_ms
            } else {
                idle_auth_ms
            };
            if now - c.last_active.load(Ordering::Relaxed) > limit && !c.cancel.is_cancelled() {
                c.cancel.cancel();
                n += 1;
            }
        }
        n
    }

    /// Cancels every connection authenticated with `enrollment_id`.
    pub fn drop_enrollment(&self, enrollment_id: &str) {
        for c in self.snapshot() {
            let hit = c
                .enrollment
                .lock()
                .map(|e| e.as_deref() == Some(enrollment_id))
                .unwrap_or(false);
            if hit {
                c.cancel.cancel();
            }
        }
    }
}

/// Sliding-window count of failed authentications per source address.
pub struct AuthThrottle {
    clock: SharedClock,
    max: u32,
    window_ms: i64,
    failures: Mutex<HashMap<IpAddr, Vec<i64>>>,
}

impl AuthThrottle {
    pub fn new(clock: SharedClock, max: u32, window_ms: i64) -> Self {
        AuthThrottle {
            clock,
            max,
            window_ms,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// True when the address may try again.
    pub fn allowed(&self, ip: IpAddr) -> bool {
        let now = self.clock.now_millis();
        let Ok(mut m) = self.failures.lock() else {
            return true;
        };
        match m.get_mut(&ip) {
            Some(v) => {
                v.retain(|t| now - t < self.window_ms);
                (v.len() as u32) < self.max
            }
            None => true,
        }
    }

    pub fn record_failure(&self, ip: IpAddr) {
        let now = self.clock.now_millis();
        if let Ok(mut m) = self.failures.lock() {
            // Bound memory: forget stale addresses when the table grows.
            if m.len() > 10_000 {
                m.retain(|_, v| v.iter().any(|t| now - t < self.window_ms));
            }
            m.entry(ip).or_default().push(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn throttle_window() {
        let clock = ManualClock::new(0);
        let t = AuthThrottle::new(clock.clone(), 2, 1000);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(t.allowed(ip));
        t.record_failure(ip);
        t.record_failure(ip);
        assert!(!t.allowed(ip));
        clock.advance(1001);
        assert!(t.allowed(ip));
    }

    #[test]
    fn reaper_cancels_idle() {
        let r = Registry::default();
        let root = CancellationToken::new();
        let (_, a) = r.register(0, &root);
        let (_, b) = r.register(0, &root);
        b.set_kind(ConnKind::Owner);
        assert_eq!(r.reap(150, 100, 1000), 1);
        assert!(a.cancel.is_cancelled());
        assert!(!b.cancel.is_cancelled());
    }
}
