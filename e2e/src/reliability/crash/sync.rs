//! A sync client that survives its server's kills: it replays the commit log with `sync:from`
//! from where it stopped, and its replica is checked against the store file between a kill and
//! the next start.
//!
//! What the atServer promises (atserver-image/src/store/schema.rs, commands/sync.rs): commit ids
//! come from an AUTOINCREMENT column, so they only rise; the log keeps the latest entry per key;
//! `sync:from:<id>` returns entries above `<id>` in id order. So a client that has read up to
//! `cursor` must hold, for every key whose store row has an id at or below `cursor`, exactly that
//! entry: anything else is an entry it never got (a gap), or one it got that the store no longer
//! has (served, then lost).

use std::collections::HashMap;
use std::path::Path;

use at_protocol::client::AtConnection;
use serde_json::Value;

use crate::reliability::error::ReliabilityError;

/// Entries per `sync:from` page (the server's cap is 25).
const PAGE: usize = 25;

#[derive(Debug)]
pub struct SyncClient {
    /// Highest commit id received.
    cursor: i64,
    /// Key → commit id of the latest entry received for it.
    replica: HashMap<String, i64>,
    /// Entries received.
    pub entries: u64,
    /// Entries out of order (at or below an id already received).
    pub out_of_order: u64,
    /// Commit rows the client should hold and does not (see the module comment).
    pub gaps: u64,
    pub violations: Vec<String>,
}

impl Default for SyncClient {
    fn default() -> Self {
        SyncClient {
            cursor: -1,
            replica: HashMap::new(),
            entries: 0,
            out_of_order: 0,
            gaps: 0,
            violations: Vec::new(),
        }
    }
}

impl SyncClient {
    /// One page from the cursor; returns how many entries it held.
    pub async fn pull(&mut self, cycle: usize, conn: &mut AtConnection) -> Result<usize, String> {
        let command = format!("sync:from:{}:limit:{PAGE}", self.cursor);
        let reply = conn.send_raw(&command).await.map_err(|e| e.to_string())?;
        let entries: Vec<Value> = match reply
            .strip_prefix("data:")
            .map(serde_json::from_str::<Value>)
        {
            Some(Ok(Value::Array(v))) => v,
            Some(Ok(Value::Null)) => Vec::new(),
            _ => {
                // A reply, but not a page: the server broke its promise (a kill gives no reply).
                let problem = format!("cycle {cycle}: `{command}` got {reply:?}");
                self.violations.push(problem.clone());
                return Err(problem);
            }
        };
        for e in &entries {
            let (Some(key), Some(id)) = (e["atKey"].as_str(), e["commitId"].as_i64()) else {
                return Err(format!("`{command}`: an entry without atKey/commitId: {e}"));
            };
            if id <= self.cursor {
                self.out_of_order += 1;
                self.violations.push(format!(
                    "cycle {cycle}: sync from {} returned commit id {id} for {key}, not above the cursor",
                    self.cursor
                ));
                continue;
            }
            self.cursor = id;
            self.entries += 1;
            self.replica.insert(key.to_owned(), id);
        }
        Ok(entries.len())
    }

    /// Pulls until a page comes back empty.
    pub async fn catch_up(&mut self, cycle: usize, conn: &mut AtConnection) -> Result<(), String> {
        while self.pull(cycle, conn).await? > 0 {}
        Ok(())
    }

    /// Compares the replica with the commit log in the store file (its server is not running).
    /// Only keys matching `suffix` are compared: those are the section's own, all synced to the
    /// owner.
    pub fn check_store(
        &mut self,
        cycle: usize,
        store: &Path,
        suffix: &str,
    ) -> Result<HashMap<String, i64>, ReliabilityError> {
        let rows = store_commits(store, suffix)?;
        for (key, &id) in &rows {
            if id > self.cursor {
                continue;
            }
            let got = self.replica.get(key).copied();
            if got != Some(id) {
                self.gaps += 1;
                self.violations.push(format!(
                    "cycle {cycle}: the store's commit log has {key} at commit id {id} (≤ the client's cursor {}) but the sync client got {got:?}",
                    self.cursor
                ));
            }
        }
        for (key, &id) in &self.replica {
            if !key.ends_with(suffix) {
                continue;
            }
            let row = rows.get(key).copied();
            if row.is_none_or(|r| r < id) {
                self.gaps += 1;
                self.violations.push(format!(
                    "cycle {cycle}: the sync client got {key} at commit id {id}, but after the kill the store's commit log has {row:?}"
                ));
            }
        }
        Ok(rows)
    }
}

/// `key → commit id` of the store's commit log, for keys ending in `suffix`, read through the
/// WAL the kill left (SQLite rebuilds only its shared-memory index for that, as the next start
/// would; the files are left as they were).
fn store_commits(store: &Path, suffix: &str) -> Result<HashMap<String, i64>, ReliabilityError> {
    let err = |e: rusqlite::Error| {
        ReliabilityError::Violated(format!(
            "the store {} does not open after the kill: {e}",
            store.display()
        ))
    };
    let conn = rusqlite::Connection::open_with_flags(
        store,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err)?;
    // Closing would checkpoint the WAL into the database and delete it: the next start must meet
    // the store exactly as the kill left it.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .map_err(err)?;
    let mut stmt = conn
        .prepare("SELECT key, id FROM commits WHERE key LIKE ?1")
        .map_err(err)?;
    let rows = stmt
        .query_map([format!("%{suffix}")], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(err)?
        .collect::<Result<HashMap<_, _>, _>>()
        .map_err(err)?;
    Ok(rows)
}
