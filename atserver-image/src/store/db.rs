//! Synchronous store operations; only ever called on the store thread.

use std::path::Path;
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use super::access::{AccessBuffer, AccessEntry};
use super::cache::RecordCache;
use super::error::StoreError;
use super::record::Record;
use super::schema;
use crate::notifications::{Kind, Notification, Status};

/// One commit log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitRow {
    pub id: i64,
    pub key: String,
    pub op: String,
    pub time: i64,
}

pub struct Db {
    conn: Connection,
    /// Filled and kept coherent here, on the store thread; read from anywhere.
    cache: Arc<RecordCache>,
    access: Arc<AccessBuffer>,
}

/// Distinct statements this module prepares (each is parsed once and kept).
const STATEMENT_CACHE: usize = 40;

/// WAL size (pages) at which a commit on the store connection checkpoints by itself.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;

fn record_from_row(key: String, value: Option<String>, meta: String) -> Result<Record, StoreError> {
    Ok(Record {
        key,
        value,
        meta: serde_json::from_str(&meta)?,
    })
}

impl Db {
    /// Opens the database with its own record cache of about `cache_bytes`.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<Db, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // The server checkpoints from its own connection (server.rs); this is only the backstop,
        // so commits on this connection rarely pay for a checkpoint.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        schema::migrate(&mut conn)?;
        Ok(Db {
            conn,
            cache: Arc::new(RecordCache::new(cache_bytes)),
            access: Arc::new(AccessBuffer::default()),
        })
    }

    pub(super) fn cache(&self) -> Arc<RecordCache> {
        self.cache.clone()
    }

    pub(super) fn access_buffer(&self) -> Arc<AccessBuffer> {
        self.access.clone()
    }

    /// Runs `f` with commits that are not synced on their own (`synchronous=NORMAL`), for
    /// bookkeeping whose loss in a crash is harmless; the next synced commit (it syncs the whole
    /// WAL) or checkpoint makes them durable too.
    pub fn unsynced<T>(
        &mut self,
        f: impl FnOnce(&mut Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let out = f(self);
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        out
    }

    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached("PRAGMA user_version")?
            .query_row([], |r| r.get(0))?)
    }

    /// The record of `key`, from the cache or from SQLite (which then fills the cache).
    pub fn get_shared(&self, key: &str) -> Result<Option<Arc<Record>>, StoreError> {
        if let Some(hit) = self.cache.get(key) {
            return Ok(hit);
        }
        let row = self
            .conn
            .prepare_cached("SELECT key, value, meta FROM records WHERE key = ?1")?
            .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let record = row
            .map(|(k, v, m)| record_from_row(k, v, m).map(Arc::new))
            .transpose()?;
        self.cache.set(key, record.clone());
        Ok(record)
    }

    pub fn get(&self, key: &str) -> Result<Option<Record>, StoreError> {
        Ok(self.get_shared(key)?.map(Arc::unwrap_or_clone))
    }

    /// Writes a record and, unless `commit` is false, its commit entry, in one transaction.
    /// Returns the commit id, or -1 when the key is not committed.
    pub fn put(
        &mut self,
        record: &Record,
        op: &str,
        commit: bool,
        now: i64,
    ) -> Result<i64, StoreError> {
        let meta = serde_json::to_string(&record.meta)?;
        let written = self.write_record(record, &meta, op, commit, now);
        match &written {
            Ok(_) => self.cache.set(&record.key, Some(Arc::new(record.clone()))),
            // A failed commit leaves the row as it was, but be certain the next read asks SQLite.
            Err(_) => self.cache.forget(&record.key),
        }
        written
    }

    fn write_record(
        &mut self,
        record: &Record,
        meta: &str,
        op: &str,
        commit: bool,
        now: i64,
    ) -> Result<i64, StoreError> {
        let tx = self.conn.transaction()?;
        tx.prepare_cached(
            "INSERT INTO records (key, value, meta, expires_at, available_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value, meta = excluded.meta,
               expires_at = excluded.expires_at, available_at = excluded.available_at",
        )?
        .execute(params![record.key, record.value, meta, record.meta.expires_at, record.meta.available_at])?;
        let id = if commit {
            Self::commit_entry(&tx, &record.key, op, now)?
        } else {
            -1
        };
        tx.commit()?;
        Ok(id)
    }

    fn commit_entry(
        tx: &rusqlite::Transaction<'_>,
        key: &str,
        op: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        tx.prepare_cached("INSERT OR REPLACE INTO commits (key, op, time) VALUES (?1, ?2, ?3)")?
            .execute(params![key, op, now])?;
        Ok(tx.last_insert_rowid())
    }

    /// Removes a record; a delete commit entry is written even when the key did not exist.
    pub fn delete(&mut self, key: &str, commit: bool, now: i64) -> Result<i64, StoreError> {
        let deleted = self.delete_record(key, commit, now);
        match &deleted {
            Ok(_) => self.cache.set(key, None),
            Err(_) => self.cache.forget(key),
        }
        deleted
    }

    fn delete_record(&mut self, key: &str, commit: bool, now: i64) -> Result<i64, StoreError> {
        let tx = self.conn.transaction()?;
        tx.prepare_cached("DELETE FROM records WHERE key = ?1")?
            .execute([key])?;
        let id = if commit {
            Self::commit_entry(&tx, key, "-", now)?
        } else {
            -1
        };
        tx.commit()?;
        Ok(id)
    }

    /// Keys that are born and not expired at `now`, in key order.
    pub fn active_keys(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT key FROM records WHERE (expires_at IS NULL OR expires_at > ?1)
               AND (available_at IS NULL OR available_at <= ?1) ORDER BY key",
        )?;
        let keys = stmt
            .query_map([now], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(keys)
    }

    /// Keys expired at `now` (uses the expiry index).
    pub fn expired_keys(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT key FROM records WHERE expires_at IS NOT NULL AND expires_at <= ?1",
        )?;
        let keys = stmt
            .query_map([now], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(keys)
    }

    /// Commit entries with id greater than `from`, ascending, at most `limit`.
    pub fn commits_after(&self, from: i64, limit: i64) -> Result<Vec<CommitRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, key, op, time FROM commits WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![from, limit], |r| {
                Ok(CommitRow {
                    id: r.get(0)?,
                    key: r.get(1)?,
                    op: r.get(2)?,
                    time: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Latest commit entries, newest first, at most `limit` after offset `skip`.
    pub fn commits_desc(&self, skip: i64, limit: i64) -> Result<Vec<CommitRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, key, op, time FROM commits ORDER BY id DESC LIMIT ?1 OFFSET ?2",
        )?;
        let rows = stmt
            .query_map(params![limit, skip], |r| {
                Ok(CommitRow {
                    id: r.get(0)?,
                    key: r.get(1)?,
                    op: r.get(2)?,
                    time: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    pub fn last_commit_id(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT MAX(id) FROM commits")?
            .query_row([], |r| r.get(0))?)
    }

    /// Database size in bytes (pages in use).
    pub fn size_bytes(&self) -> Result<i64, StoreError> {
        let pages: i64 = self
            .conn
            .prepare_cached("PRAGMA page_count")?
            .query_row([], |r| r.get(0))?;
        let size: i64 = self
            .conn
            .prepare_cached("PRAGMA page_size")?
            .query_row([], |r| r.get(0))?;
        Ok(pages * size)
    }

    // --- notifications ---

    pub fn put_notification(&mut self, n: &Notification) -> Result<(), StoreError> {
        let body = serde_json::to_string(n)?;
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO notifications
               (id, kind, status, priority, from_atsign, to_atsign, created_at, expires_at, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                n.id,
                n.kind.as_str(),
                n.status.as_str(),
                n.priority as i64,
                n.from,
                n.to,
                n.created_at,
                n.expires_at,
                body
            ])?;
        Ok(())
    }

    pub fn get_notification(&self, id: &str) -> Result<Option<Notification>, StoreError> {
        let body: Option<String> = self
            .conn
            .prepare_cached("SELECT body FROM notifications WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
    }

    /// Unexpired notifications of the given kinds created after `since`, oldest first.
    pub fn notifications_since(
        &self,
        kinds: &[Kind],
        since: i64,
        now: i64,
    ) -> Result<Vec<Notification>, StoreError> {
        let mut out = Vec::new();
        let mut stmt = self.conn.prepare_cached(
            "SELECT body FROM notifications WHERE kind = ?1 AND created_at > ?2 AND expires_at > ?3
             ORDER BY created_at",
        )?;
        for kind in kinds {
            let bodies: Vec<String> = stmt
                .query_map(params![kind.as_str(), since, now], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for b in bodies {
                out.push(serde_json::from_str(&b)?);
            }
        }
        out.sort_by_key(|n: &Notification| n.created_at);
        Ok(out)
    }

    /// Unexpired sent notifications still `queued` (the delivery queue), oldest first; uses the
    /// status index, so delivered history does not slow the delivery engine down.
    pub fn queued_sent(&self, now: i64) -> Result<Vec<Notification>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT body FROM notifications WHERE status = 'queued' AND kind = 'sent' AND expires_at > ?1
             ORDER BY created_at",
        )?;
        let bodies: Vec<String> = stmt
            .query_map(params![now], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        bodies
            .iter()
            .map(|b| Ok(serde_json::from_str(b)?))
            .collect()
    }

    pub fn remove_notification(&mut self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("DELETE FROM notifications WHERE id = ?1")?
            .execute([id])?
            > 0)
    }

    pub fn purge_expired_notifications(&mut self, now: i64) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .prepare_cached("DELETE FROM notifications WHERE expires_at <= ?1")?
            .execute([now])?)
    }

    /// Counts by (kind, status, operation, message type) for `stats:11` and metrics.
    pub fn notification_counts(&self) -> Result<Vec<Notification>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT body FROM notifications")?;
        let bodies: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        bodies
            .iter()
            .map(|b| Ok(serde_json::from_str(b)?))
            .collect()
    }

    pub fn notification_status_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT status, COUNT(*) FROM notifications GROUP BY status")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    pub fn set_notification_status(&mut self, id: &str, status: Status) -> Result<(), StoreError> {
        if let Some(mut n) = self.get_notification(id)? {
            n.status = status;
            self.put_notification(&n)?;
        }
        Ok(())
    }

    // --- access log (stats 5, 6, 8, 10) ---

    /// Queues an access log entry (written in batches, see [`AccessBuffer`]).
    pub fn log_access(
        &mut self,
        atsign: Option<&str>,
        key: Option<&str>,
        verb: &'static str,
        now: i64,
    ) -> Result<(), StoreError> {
        let full = self.access.push(AccessEntry {
            atsign: atsign.map(str::to_string),
            key: key.map(str::to_string),
            verb,
            time: now,
        });
        if full {
            self.flush_access_log()?;
        }
        Ok(())
    }

    /// Writes the buffered access log entries in one transaction.
    pub fn flush_access_log(&mut self) -> Result<(), StoreError> {
        let entries = self.access.take();
        if entries.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO access_log (atsign, key, verb, time) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for e in &entries {
                insert.execute(params![e.atsign, e.key, e.verb, e.time])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Most frequent values of `column` ("atsign" or "key").
    pub fn top_access(
        &mut self,
        column: &str,
        limit: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        self.flush_access_log()?;
        let sql = match column {
            "atsign" => "SELECT atsign, COUNT(*) c FROM access_log WHERE atsign IS NOT NULL GROUP BY atsign ORDER BY c DESC LIMIT ?1",
            _ => "SELECT key, COUNT(*) c FROM access_log WHERE key IS NOT NULL GROUP BY key ORDER BY c DESC LIMIT ?1",
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map([limit], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    pub fn last_access(&mut self, verb: Option<&str>) -> Result<Option<i64>, StoreError> {
        self.flush_access_log()?;
        Ok(match verb {
            Some(v) => self
                .conn
                .prepare_cached("SELECT MAX(time) FROM access_log WHERE verb = ?1")?
                .query_row([v], |r| r.get(0))?,
            None => self
                .conn
                .prepare_cached("SELECT MAX(time) FROM access_log")?
                .query_row([], |r| r.get(0))?,
        })
    }

    /// Drops access log entries older than `before` (after writing the buffered ones).
    pub fn compact_access_log(&mut self, before: i64) -> Result<usize, StoreError> {
        self.flush_access_log()?;
        Ok(self
            .conn
            .prepare_cached("DELETE FROM access_log WHERE time < ?1")?
            .execute([before])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::Metadata;

    fn record(key: &str) -> Record {
        Record {
            key: key.into(),
            value: Some("v".into()),
            meta: Metadata::new_record("@alice", 1),
        }
    }

    #[test]
    fn commit_log_keeps_latest_entry_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("t.db"), 1 << 20).unwrap();
        assert_eq!(db.schema_version().unwrap(), super::super::SCHEMA_VERSION);
        let a1 = db.put(&record("a@alice"), "+", true, 1).unwrap();
        let b1 = db.put(&record("b@alice"), "+", true, 2).unwrap();
        let a2 = db.put(&record("a@alice"), "*", true, 3).unwrap();
        assert!(a1 < b1 && b1 < a2);
        let rows = db.commits_after(0, 100).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
            ["b@alice", "a@alice"]
        );
        assert_eq!(db.put(&record("privatekey:x"), "+", false, 4).unwrap(), -1);
        let d = db.delete("missing@alice", true, 5).unwrap();
        assert!(d > a2);
        assert_eq!(db.last_commit_id().unwrap(), Some(d));
    }

    fn notification(id: &str, kind: Kind, status: Status, created_at: i64) -> Notification {
        Notification {
            id: id.into(),
            from: "@alice".into(),
            to: "@bob".into(),
            key: "@bob:k@alice".into(),
            value: None,
            operation: crate::notifications::Operation::Update,
            message_type: crate::notifications::MessageType::Key,
            kind,
            status,
            priority: crate::notifications::Priority::Low,
            strategy: "all".into(),
            latest_n: 1,
            notifier: "SYSTEM".into(),
            retry_count: 0,
            created_at,
            ttl: 100,
            expires_at: created_at + 100,
            is_encrypted: false,
            metadata: None,
        }
    }

    #[test]
    fn delivery_queue_is_queued_unexpired_sent_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("t.db"), 1 << 20).unwrap();
        for n in [
            notification("late", Kind::Sent, Status::Queued, 50),
            notification("early", Kind::Sent, Status::Queued, 40),
            notification("done", Kind::Sent, Status::Delivered, 45),
            notification("failed", Kind::Sent, Status::Errored, 45),
            notification("inbox", Kind::Received, Status::Queued, 45),
            notification("stale", Kind::Sent, Status::Queued, 0),
        ] {
            db.put_notification(&n).unwrap();
        }
        let ids: Vec<String> = db
            .queued_sent(120)
            .unwrap()
            .into_iter()
            .map(|n| n.id)
            .collect();
        assert_eq!(ids, ["early", "late"]);
    }
}
