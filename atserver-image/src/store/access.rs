//! The access log's write buffer.
//!
//! The access log only feeds statistics (`stats:5/6/8/10`), so a lookup must not wait for a
//! synchronous SQLite commit (an fsync) to record itself. Entries collect here and the store
//! thread writes them in one transaction: when enough have gathered, before any access-log query
//! (so statistics always include every lookup answered so far), at each sweep and at shutdown.
//! A crash can lose the entries of the last moments; never an acknowledged write.

use std::sync::{Mutex, MutexGuard};

/// Entries that make the buffer ask for a flush.
pub const FLUSH_AT: usize = 256;
/// Entries kept at most when flushes cannot keep up (the store thread has stopped): later ones
/// are dropped, as statistics are not worth unbounded memory.
const MAX_PENDING: usize = 16 * FLUSH_AT;

#[derive(Debug, Clone, PartialEq)]
pub struct AccessEntry {
    pub atsign: Option<String>,
    pub key: Option<String>,
    pub verb: &'static str,
    pub time: i64,
}

#[derive(Default)]
pub struct AccessBuffer {
    pending: Mutex<Vec<AccessEntry>>,
}

impl AccessBuffer {
    fn lock(&self) -> MutexGuard<'_, Vec<AccessEntry>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an entry; true when this one filled the buffer to [`FLUSH_AT`].
    pub fn push(&self, entry: AccessEntry) -> bool {
        let mut pending = self.lock();
        if pending.len() < MAX_PENDING {
            pending.push(entry);
        }
        pending.len() == FLUSH_AT
    }

    /// Takes every pending entry, leaving no allocation behind.
    pub fn take(&self) -> Vec<AccessEntry> {
        std::mem::take(&mut *self.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(time: i64) -> AccessEntry {
        AccessEntry {
            atsign: Some("@alice".into()),
            key: Some("public:k@alice".into()),
            verb: "lookup",
            time,
        }
    }

    #[test]
    fn asks_for_a_flush_once_full_and_stays_bounded() {
        let buffer = AccessBuffer::default();
        let asks = (0..FLUSH_AT as i64)
            .filter(|t| buffer.push(entry(*t)))
            .count();
        assert_eq!(asks, 1);
        for t in 0..(2 * MAX_PENDING) as i64 {
            buffer.push(entry(t));
        }
        let taken = buffer.take();
        assert_eq!(taken.len(), MAX_PENDING);
        assert_eq!(taken.first(), Some(&entry(0)));
        assert!(buffer.take().is_empty());
    }
}
