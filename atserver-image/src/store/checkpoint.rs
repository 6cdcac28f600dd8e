//! The WAL checkpointer: a background task that copies committed WAL frames into the database.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// How often the WAL is checked for commits to copy into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// Copies committed WAL frames into the database from a second connection, so no commit on
/// the store thread waits for a checkpoint (SQLite's automatic one runs inside the commit
/// that crosses its threshold and holds every later store call). Passive: never blocks the
/// writer; durability is unchanged (every commit is already synced in the WAL).
pub async fn checkpointer(db: PathBuf, shutdown: CancellationToken) {
    let mut wal = db.clone().into_os_string();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    let mut conn: Option<rusqlite::Connection> = None;
    // What start-up wrote waits for the next write: an idle server runs no checkpoint thread.
    let mut seen = wal_stamp(&wal);
    let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let stamp = wal_stamp(&wal);
        if stamp.is_none() || stamp == seen {
            continue;
        }
        let (path, taken) = (db.clone(), conn.take());
        match tokio::task::spawn_blocking(move || checkpoint(taken, &path)).await {
            Ok((kept, result)) => {
                conn = kept;
                match result {
                    Ok(()) => seen = stamp,
                    Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint task failed"),
        }
    }
}

/// Size and modification time of the WAL: they change with every commit (the WAL only
/// grows until a writer restarts it from the top, which rewrites it).
fn wal_stamp(wal: &Path) -> Option<(u64, Option<std::time::SystemTime>)> {
    std::fs::metadata(wal)
        .ok()
        .map(|m| (m.len(), m.modified().ok()))
}

/// One passive checkpoint on `conn` (opened on first use); hands the connection back.
fn checkpoint(
    conn: Option<rusqlite::Connection>,
    db: &Path,
) -> (Option<rusqlite::Connection>, rusqlite::Result<()>) {
    let conn = match conn {
        Some(c) => c,
        None => match rusqlite::Connection::open(db) {
            Ok(c) => c,
            Err(e) => return (None, Err(e)),
        },
    };
    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    (Some(conn), result)
}
