//! The durable-write baseline: one SQLite insert per transaction with the atserver store's settings
//! (`journal_mode=WAL`, `synchronous=FULL`, see atserver-image/src/store/db.rs).

use std::path::Path;
use std::time::Instant;

use rusqlite::{params, Connection};

use super::BenchError;

/// Inserts `n` rows, each in its own committed transaction, after `warmup` untimed ones; rows per second.
pub fn insert_rate(dir: &Path, warmup: usize, n: usize) -> Result<f64, BenchError> {
    let path = dir.join("baseline.sqlite3");
    let _ = std::fs::remove_file(&path);
    let mut conn = Connection::open(&path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS records (key TEXT PRIMARY KEY, value TEXT, meta TEXT NOT NULL)",
    )?;
    let mut insert = |i: usize| -> Result<(), BenchError> {
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO records (key, value, meta) VALUES (?1, ?2, ?3)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value, meta = excluded.meta",
            params![format!("public:bench{i}@alice"), format!("value {i}"), "{}"],
        )?;
        tx.commit()?;
        Ok(())
    };
    for i in 0..warmup {
        insert(usize::MAX - i)?;
    }
    let started = Instant::now();
    for i in 0..n {
        insert(i)?;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(if secs > 0.0 { n as f64 / secs } else { 0.0 })
}
