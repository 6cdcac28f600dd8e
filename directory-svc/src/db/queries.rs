//! The SQL. Owner fencing is decided inside single statements, so concurrent writers cannot both win.

use jiff::Timestamp;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::Row;

use super::error::DbError;

/// One row of the `atsigns` table. `name` is the atSign without `@`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub owner: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Created(Registration),
    Updated(Registration),
    Conflict { current_owner: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    NotFound,
    Conflict { current_owner: String },
}

/// The columns of a [`Registration`]. Timestamps travel as microseconds since the epoch, so no sqlx time
/// feature is needed. A macro so every statement stays a `&'static str` (sqlx refuses dynamic SQL).
macro_rules! columns {
    () => {
        "atsign, host, port, owner, \
         (extract(epoch FROM created_at) * 1000000)::int8 AS created_us, \
         (extract(epoch FROM updated_at) * 1000000)::int8 AS updated_us"
    };
}

fn timestamp(us: i64) -> Result<Timestamp, DbError> {
    Timestamp::from_microsecond(us).map_err(|e| DbError::Data(format!("timestamp {us}: {e}")))
}

fn port(raw: i32) -> Result<u16, DbError> {
    u16::try_from(raw).map_err(|_| DbError::Data(format!("port {raw} out of range")))
}

fn registration(row: &PgRow) -> Result<Registration, DbError> {
    Ok(Registration {
        name: row.try_get("atsign")?,
        host: row.try_get("host")?,
        port: port(row.try_get("port")?)?,
        owner: row.try_get("owner")?,
        created_at: timestamp(row.try_get("created_us")?)?,
        updated_at: timestamp(row.try_get("updated_us")?)?,
    })
}

pub(super) async fn ping(pool: &PgPool) -> Result<(), DbError> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}

pub(super) async fn lookup(pool: &PgPool, name: &str) -> Result<Option<(String, u16)>, DbError> {
    let row = sqlx::query("SELECT host, port FROM atsigns WHERE atsign = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    row.map(|r| Ok((r.try_get("host")?, port(r.try_get("port")?)?)))
        .transpose()
}

pub(super) async fn get(pool: &PgPool, name: &str) -> Result<Option<Registration>, DbError> {
    let sql = concat!("SELECT ", columns!(), " FROM atsigns WHERE atsign = $1");
    let row = sqlx::query(sql).bind(name).fetch_optional(pool).await?;
    row.as_ref().map(registration).transpose()
}

pub(super) async fn list(
    pool: &PgPool,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Registration>, DbError> {
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM atsigns WHERE ($1::text IS NULL OR atsign > $1) ORDER BY atsign LIMIT $2"
    );
    let rows = sqlx::query(sql)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter().map(registration).collect()
}

async fn current_owner(pool: &PgPool, name: &str) -> Result<Option<String>, DbError> {
    let row = sqlx::query("SELECT owner FROM atsigns WHERE atsign = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| r.try_get("owner")).transpose()?)
}

/// A row deleted between the fenced write and the owner read-back can only loop a few times.
const FENCE_RETRIES: usize = 5;

pub(super) async fn put(
    pool: &PgPool,
    name: &str,
    host: &str,
    port: u16,
    owner: &str,
    force: bool,
) -> Result<PutOutcome, DbError> {
    // The conflicting row is locked by ON CONFLICT, so of two owners racing for a new atSign exactly one
    // inserts and the other sees the winner's owner in the WHERE clause.
    let sql = concat!(
        "INSERT INTO atsigns AS a (atsign, host, port, owner) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (atsign) DO UPDATE \
           SET host = EXCLUDED.host, port = EXCLUDED.port, owner = EXCLUDED.owner, updated_at = now() \
           WHERE a.owner = EXCLUDED.owner OR $5 \
         RETURNING ",
        columns!(),
        ", (xmax = 0) AS inserted"
    );
    for _ in 0..FENCE_RETRIES {
        let row = sqlx::query(sql)
            .bind(name)
            .bind(host)
            .bind(i32::from(port))
            .bind(owner)
            .bind(force)
            .fetch_optional(pool)
            .await?;
        if let Some(row) = row {
            let reg = registration(&row)?;
            let inserted: bool = row.try_get("inserted")?;
            return Ok(if inserted {
                PutOutcome::Created(reg)
            } else {
                PutOutcome::Updated(reg)
            });
        }
        if let Some(current_owner) = current_owner(pool, name).await? {
            return Ok(PutOutcome::Conflict { current_owner });
        }
    }
    Err(DbError::Data(format!(
        "registration of {name} kept changing under a fenced write"
    )))
}

pub(super) async fn delete(
    pool: &PgPool,
    name: &str,
    owner: Option<&str>,
    force: bool,
) -> Result<DeleteOutcome, DbError> {
    let row =
        sqlx::query("DELETE FROM atsigns WHERE atsign = $1 AND (owner = $2 OR $3) RETURNING owner")
            .bind(name)
            .bind(owner)
            .bind(force)
            .fetch_optional(pool)
            .await?;
    if row.is_some() {
        return Ok(DeleteOutcome::Deleted);
    }
    Ok(match current_owner(pool, name).await? {
        Some(current_owner) => DeleteOutcome::Conflict { current_owner },
        None => DeleteOutcome::NotFound,
    })
}
