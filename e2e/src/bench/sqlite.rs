//! The durable-write baseline: one SQLite insert per transaction with the atserver store's settings
//! (`journal_mode=WAL`, `synchronous=FULL`, see atserver-image/src/store/db.rs).

use std::path::Path;
use std::time::Instant;

use rusqlite::{params, Connection};

use super::BenchError;

/// Opens one database (as the server keeps one), inserts `warmup` untimed rows, then times `reps`
/// runs of `n` rows, each row in its own committed transaction; rows per second of each run.
pub fn insert_rates(
    dir: &Path,
    warmup: usize,
    n: usize,
    reps: usize,
) -> Result<Vec<f64>, BenchError> {
    let path = dir.join("baseline.sqlite3");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
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
            params![
                format!("public:w{i}.bench@alice"),
                format!("value {i}"),
                "{}"
            ],
        )?;
        tx.commit()?;
        Ok(())
    };
    for i in 0..warmup {
        insert(i)?;
    }
    let mut rates = Vec::with_capacity(reps);
    for _ in 0..reps {
        let started = Instant::now();
        for i in 0..n {
            insert(i)?;
        }
        let secs = started.elapsed().as_secs_f64();
        rates.push(if secs > 0.0 { n as f64 / secs } else { 0.0 });
    }
    Ok(rates)
}
