//! The data volumes' claims are not watched (the operator may only get, patch and delete them),
//! so there is no cache to read them from. Instead each claim's last reconciled configuration is
//! remembered: while the pod using it is ready the claim is not read again, otherwise it is
//! re-read once per `recheck` period rather than on every reconcile.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

type Key = (String, String);

pub struct ClaimMemory {
    recheck: Duration,
    seen: Mutex<HashMap<Key, (String, Instant)>>,
}

impl ClaimMemory {
    pub fn new(recheck: Duration) -> Self {
        Self {
            recheck,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn key(namespace: &str, name: &str) -> Key {
        (namespace.to_owned(), name.to_owned())
    }

    /// The claim was reconciled to the configuration `hash`, and either its pod is `serving`
    /// from it or that was less than `recheck` ago.
    pub fn fresh(&self, namespace: &str, name: &str, hash: &str, serving: bool) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(&Self::key(namespace, name))
            .is_some_and(|(h, at)| h == hash && (serving || at.elapsed() < self.recheck))
    }

    pub fn remember(&self, namespace: &str, name: &str, hash: String) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.insert(Self::key(namespace, name), (hash, Instant::now()));
    }

    pub fn forget(&self, namespace: &str, name: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.remove(&Self::key(namespace, name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_claim_is_fresh_until_recheck_or_a_new_configuration() {
        let m = ClaimMemory::new(Duration::from_secs(60));
        assert!(!m.fresh("ns", "a-data", "h1", true), "never seen");
        m.remember("ns", "a-data", "h1".into());
        assert!(m.fresh("ns", "a-data", "h1", false));
        assert!(
            !m.fresh("ns", "a-data", "h2", true),
            "a changed configuration"
        );
        assert!(!m.fresh("other", "a-data", "h1", true));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(!m.fresh("ns", "a-data", "h1", false), "due for a re-check");
        assert!(m.fresh("ns", "a-data", "h1", true), "in use by a ready pod");
        m.remember("ns", "a-data", "h1".into());
        m.forget("ns", "a-data");
        assert!(!m.fresh("ns", "a-data", "h1", true));
    }
}
