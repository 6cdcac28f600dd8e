//! A bounded, least-recently-used cache of records in front of SQLite, so repeated reads do not
//! go to the store thread.
//!
//! Coherence: only the store thread fills or changes entries, and it does so after the SQLite
//! transaction committed and before the writer is answered; readers on any thread only look up.
//! An entry may also record that a key is absent, so misses of hot absent keys are cheap too.

use std::mem::size_of;
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;

use super::record::Record;

/// What a cached key holds: its record, or `None` when the store has no such key.
pub type Cached = Option<Arc<Record>>;

/// Rough fixed cost of one entry (hash slot, list node, `Arc` and `Record` headers).
const ENTRY_OVERHEAD: usize = 96 + size_of::<Record>();

/// Approximate heap bytes one entry holds, for the budget.
fn weight(key: &str, value: &Cached) -> usize {
    let record = value.as_ref().map_or(0, |r| {
        r.key.len()
            + r.value.as_ref().map_or(0, String::len)
            + r.meta.created_by.len()
            + r.meta.updated_by.len()
            + r.meta
                .strings
                .iter()
                .map(|(k, v)| k.len() + v.len() + 64)
                .sum::<usize>()
    });
    ENTRY_OVERHEAD + key.len() + record
}

struct Inner {
    lru: LruCache<String, Cached>,
    bytes: usize,
}

pub struct RecordCache {
    inner: Mutex<Inner>,
    budget: usize,
}

impl RecordCache {
    /// An empty cache holding at most about `budget` bytes; it allocates nothing until used.
    pub fn new(budget: usize) -> Self {
        RecordCache {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            budget,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map inconsistent for readers.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Some(entry)` when the key is cached (the entry says whether it exists), `None` on a miss.
    pub fn get(&self, key: &str) -> Option<Cached> {
        self.lock().lru.get(key).cloned()
    }

    /// Records what the store holds for `key`; store thread only, after a commit or a read.
    pub(super) fn set(&self, key: &str, value: Cached) {
        let w = weight(key, &value);
        let mut inner = self.lock();
        if w > self.budget {
            if let Some(old) = inner.lru.pop(key) {
                inner.bytes -= weight(key, &old);
            }
            return;
        }
        if let Some(old) = inner.lru.put(key.to_string(), value) {
            inner.bytes -= weight(key, &old);
        }
        inner.bytes += w;
        while inner.bytes > self.budget {
            let Some((k, v)) = inner.lru.pop_lru() else {
                break;
            };
            inner.bytes -= weight(&k, &v);
        }
    }

    /// Forgets `key` (when the store's state of it is unknown, e.g. after a failed commit).
    pub(super) fn forget(&self, key: &str) {
        let mut inner = self.lock();
        if let Some(old) = inner.lru.pop(key) {
            inner.bytes -= weight(key, &old);
        }
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::Metadata;

    fn record(key: &str, value: &str) -> Cached {
        Some(Arc::new(Record {
            key: key.into(),
            value: Some(value.into()),
            meta: Metadata::new_record("@alice", 1),
        }))
    }

    #[test]
    fn hits_misses_and_absent_entries() {
        let cache = RecordCache::new(1 << 20);
        assert!(cache.get("a@alice").is_none());
        cache.set("a@alice", record("a@alice", "1"));
        cache.set("b@alice", None);
        let hit = cache.get("a@alice").flatten();
        assert_eq!(hit.and_then(|r| r.value.clone()).as_deref(), Some("1"));
        assert!(matches!(cache.get("b@alice"), Some(None)));
        cache.set("a@alice", record("a@alice", "2"));
        let hit = cache.get("a@alice").flatten();
        assert_eq!(hit.and_then(|r| r.value.clone()).as_deref(), Some("2"));
        cache.forget("a@alice");
        assert!(cache.get("a@alice").is_none());
        cache.forget("b@alice");
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn stays_within_budget_evicting_least_recently_used() {
        let one = weight("k000@alice", &record("k000@alice", "v"));
        let cache = RecordCache::new(one * 3);
        for i in 0..3 {
            let k = format!("k{i:03}@alice");
            cache.set(&k, record(&k, "v"));
        }
        // Touch k000 so k001 is the least recently used when k003 arrives.
        assert!(cache.get("k000@alice").is_some());
        cache.set("k003@alice", record("k003@alice", "v"));
        assert!(cache.bytes() <= one * 3);
        assert!(cache.get("k001@alice").is_none());
        assert!(cache.get("k000@alice").is_some());
        assert!(cache.get("k003@alice").is_some());
        // An entry larger than the whole budget is not kept, and drops an older one of its key.
        let big = "x".repeat(one * 4);
        cache.set("k000@alice", record("k000@alice", &big));
        assert!(cache.get("k000@alice").is_none());
    }
}
