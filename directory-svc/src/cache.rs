//! The in-process lookup cache: bounded (LRU), found entries revalidated after a lifetime, not-found entries
//! short-lived. Replicas keep it coherent from the database's change notifications (see `coherence`).

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use lru::LruCache;
use tokio::time::Instant;

/// Where an atServer answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Clone)]
struct Entry {
    address: Option<Address>,
    expires: Instant,
    /// Set when changes may have been missed (listener reconnect): ask the database before trusting it.
    stale: bool,
}

/// What the cache knows about one atSign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// Known and current: `None` is a remembered not-found.
    Fresh(Option<Address>),
    /// Found earlier but due for revalidation; still good enough when the database is unreachable.
    Stale(Address),
    Absent,
}

/// A token taken before a database read; the result is cached only if no change arrived meanwhile,
/// so a slow read can never overwrite a newer notification.
#[derive(Debug, Clone, Copy)]
pub struct Generation(u64);

pub struct Cache {
    entries: Mutex<LruCache<String, Entry>>,
    generation: AtomicU64,
    ttl: Duration,
    negative_ttl: Duration,
}

impl Cache {
    pub fn new(capacity: usize, ttl: Duration, negative_ttl: Duration) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            entries: Mutex::new(LruCache::new(capacity)),
            generation: AtomicU64::new(0),
            ttl,
            negative_ttl,
        }
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<String, Entry>> {
        // A panic elsewhere while holding the lock leaves the map itself consistent.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, name: &str) -> Cached {
        let now = Instant::now();
        let mut entries = self.lock();
        let Some(entry) = entries.get(name) else {
            return Cached::Absent;
        };
        match (&entry.address, entry.stale || entry.expires <= now) {
            (answer, false) => Cached::Fresh(answer.clone()),
            (Some(address), true) => Cached::Stale(address.clone()),
            (None, true) => {
                entries.pop(name);
                Cached::Absent
            }
        }
    }

    pub fn generation(&self) -> Generation {
        Generation(self.generation.load(Ordering::SeqCst))
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Stores a database answer unless a change arrived since `seen` was taken.
    pub fn store(&self, name: &str, address: Option<Address>, seen: Generation) {
        let mut entries = self.lock();
        if self.generation.load(Ordering::SeqCst) != seen.0 {
            return;
        }
        self.insert(&mut entries, name, address);
    }

    fn insert(&self, entries: &mut LruCache<String, Entry>, name: &str, address: Option<Address>) {
        let ttl = if address.is_some() {
            self.ttl
        } else {
            self.negative_ttl
        };
        entries.put(
            name.to_owned(),
            Entry {
                address,
                expires: Instant::now() + ttl,
                stale: false,
            },
        );
    }

    /// A registration changed (from a notification): the new address is authoritative.
    pub fn apply_upsert(&self, name: &str, address: Address) {
        let mut entries = self.lock();
        self.bump();
        self.insert(&mut entries, name, Some(address));
    }

    /// A registration was deleted (from a notification).
    pub fn apply_delete(&self, name: &str) {
        let mut entries = self.lock();
        self.bump();
        entries.pop(name);
    }

    /// After notifications may have been missed: drop not-found entries (a registration may have appeared)
    /// and mark found entries for revalidation (they stay usable while the database is unreachable).
    pub fn invalidate_after_gap(&self) {
        let mut entries = self.lock();
        self.bump();
        let negatives: Vec<String> = entries
            .iter()
            .filter(|(_, e)| e.address.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        for name in negatives {
            entries.pop(&name);
        }
        for (_, entry) in entries.iter_mut() {
            entry.stale = true;
        }
    }

    pub fn clear(&self) {
        let mut entries = self.lock();
        self.bump();
        entries.clear();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> Address {
        Address {
            host: "h.example".into(),
            port,
        }
    }

    fn cache() -> Cache {
        Cache::new(2, Duration::from_secs(60), Duration::from_secs(5))
    }

    #[tokio::test(start_paused = true)]
    async fn negative_entries_expire_before_positive_ones() {
        let c = cache();
        c.store("a", Some(addr(1)), c.generation());
        c.store("b", None, c.generation());
        assert_eq!(c.get("b"), Cached::Fresh(None));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(c.get("b"), Cached::Absent);
        assert_eq!(c.get("a"), Cached::Fresh(Some(addr(1))));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(c.get("a"), Cached::Stale(addr(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_by_capacity() {
        let c = cache();
        for (i, n) in ["a", "b", "c"].into_iter().enumerate() {
            c.store(n, Some(addr(i as u16 + 1)), c.generation());
        }
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("a"), Cached::Absent);
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_older_than_a_notification_is_not_cached() {
        let c = cache();
        let seen = c.generation();
        c.apply_upsert("a", addr(2));
        c.store("a", None, seen);
        assert_eq!(c.get("a"), Cached::Fresh(Some(addr(2))));
    }

    #[tokio::test(start_paused = true)]
    async fn gap_drops_negatives_and_marks_positives_stale() {
        let c = cache();
        c.store("a", Some(addr(1)), c.generation());
        c.store("b", None, c.generation());
        c.invalidate_after_gap();
        assert_eq!(c.get("a"), Cached::Stale(addr(1)));
        assert_eq!(c.get("b"), Cached::Absent);
        c.apply_delete("a");
        assert_eq!(c.get("a"), Cached::Absent);
    }
}
