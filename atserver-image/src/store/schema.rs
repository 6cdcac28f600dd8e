//! Schema migrations, applied in order and tracked with `PRAGMA user_version`.

use rusqlite::Connection;

/// Each entry upgrades the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // v1: records, commit log, notifications, access log.
    r#"
    CREATE TABLE records (
        key          TEXT PRIMARY KEY NOT NULL,
        value        TEXT,
        meta         TEXT NOT NULL,
        expires_at   INTEGER,
        available_at INTEGER
    );
    CREATE INDEX records_expires_at ON records(expires_at) WHERE expires_at IS NOT NULL;

    -- Only the latest entry per key is kept: the UNIQUE key makes INSERT OR REPLACE drop the old one.
    CREATE TABLE commits (
        id   INTEGER PRIMARY KEY AUTOINCREMENT,
        key  TEXT NOT NULL UNIQUE,
        op   TEXT NOT NULL,
        time INTEGER NOT NULL
    );

    CREATE TABLE notifications (
        id         TEXT PRIMARY KEY NOT NULL,
        kind       TEXT NOT NULL,
        status     TEXT NOT NULL,
        priority   INTEGER NOT NULL,
        from_atsign TEXT NOT NULL,
        to_atsign  TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        body       TEXT NOT NULL
    );
    CREATE INDEX notifications_kind_time ON notifications(kind, created_at);
    CREATE INDEX notifications_expires_at ON notifications(expires_at);
    CREATE INDEX notifications_status ON notifications(status);

    CREATE TABLE access_log (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        atsign TEXT,
        key    TEXT,
        verb   TEXT NOT NULL,
        time   INTEGER NOT NULL
    );
    CREATE INDEX access_log_time ON access_log(time);
    "#,
];

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`]; each step runs in its own transaction.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (index, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (index + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
