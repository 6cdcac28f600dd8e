//! The durable-write baseline: one SQLite upsert per committed transaction with the atserver store's
//! settings (atserver-image/src/store/db.rs: `journal_mode=WAL`, `synchronous=FULL`,
//! `wal_autocheckpoint` 10,000 pages; server.rs: a passive checkpoint from a second connection
//! every 250 ms), so both sides pay the same storage costs and only the server's own work differs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

use super::error::BenchError;

/// The atserver store's backstop checkpoint threshold (pages).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;
/// How often the atserver's checkpointer copies the WAL into the database.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// One baseline database (as the server keeps one) and its checkpointer.
///
/// Keys are `public:w<i>.bench@alice`, as the server's are, so later runs overwrite. Every write
/// carries a new metadata value (the server's carries a new `updatedAt`): SQLite skips writing a
/// row whose bytes are unchanged, and such a commit syncs nothing.
pub struct Baseline {
    conn: Connection,
    checkpointer: Checkpointer,
    written: u64,
}

impl Baseline {
    /// A fresh database in `dir` with the atserver store's settings.
    pub fn open(dir: &Path) -> Result<Baseline, BenchError> {
        let path = dir.join("baseline.sqlite3");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS records (key TEXT PRIMARY KEY, value TEXT, meta TEXT NOT NULL)",
        )?;
        Ok(Baseline {
            conn,
            checkpointer: Checkpointer::start(path),
            written: 0,
        })
    }

    /// Upserts key `i` in its own committed transaction.
    pub fn write(&mut self, i: usize) -> Result<(), BenchError> {
        self.written += 1;
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO records (key, value, meta) VALUES (?1, ?2, ?3)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value, meta = excluded.meta",
            params![
                format!("public:w{i}.bench@alice"),
                format!("value {i}"),
                format!("{{\"version\":{}}}", self.written)
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Writes `keys`, one transaction each; the seconds it took.
    pub fn write_timed(&mut self, keys: std::ops::Range<usize>) -> Result<f64, BenchError> {
        let started = Instant::now();
        for i in keys {
            self.write(i)?;
        }
        Ok(started.elapsed().as_secs_f64())
    }

    /// Stops the checkpointer.
    pub fn close(self) -> Result<(), BenchError> {
        self.checkpointer.stop()
    }
}

/// A thread that checkpoints the database passively whenever the WAL changed, as the server's does.
struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<(), rusqlite::Error>>,
}

impl Checkpointer {
    fn start(db: PathBuf) -> Checkpointer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let wal = PathBuf::from(format!("{}-wal", db.display()));
            let conn = Connection::open(&db)?;
            let mut seen = None;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(CHECKPOINT_INTERVAL);
                let stamp = std::fs::metadata(&wal)
                    .ok()
                    .map(|m| (m.len(), m.modified().ok()));
                if stamp.is_some() && stamp != seen {
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
                    seen = stamp;
                }
            }
            Ok(())
        });
        Checkpointer { stop, thread }
    }

    fn stop(self) -> Result<(), BenchError> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| BenchError::Setup("sqlite checkpointer panicked".into()))??;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_write_changes_its_row_and_runs_reuse_the_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Baseline::open(dir.path()).unwrap();
        for i in 0..3 {
            b.write(i).unwrap();
        }
        assert!(b.write_timed(0..4).unwrap() > 0.0);
        assert!(b.write_timed(0..4).unwrap() > 0.0);
        b.close().unwrap();
        let conn = Connection::open(dir.path().join("baseline.sqlite3")).unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 4, "the same keys every run, as the server's");
        let meta = |key: &str| -> String {
            conn.query_row("SELECT meta FROM records WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .unwrap()
        };
        // 3 warm-up writes, then 2 runs of 4: w0 was last written 8th, w3 11th (the last).
        assert_eq!(meta("public:w0.bench@alice"), "{\"version\":8}");
        assert_eq!(meta("public:w3.bench@alice"), "{\"version\":11}");
    }
}
