//! The handle the rest of the directory holds: a pool for the primary and one for reads, with every
//! query timed, bounded by the configured timeout and counted when it fails.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::time::Instant;

use super::error::DbError;
use super::queries::{self, DeleteOutcome, PutOutcome, Registration};
use crate::metrics::{Metrics, OpLabel};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Pools for the primary (writes, LISTEN) and for reads (a replica when configured).
#[derive(Clone)]
pub struct Db {
    write: PgPool,
    read: PgPool,
    has_replica: bool,
    timeout: Duration,
    metrics: Metrics,
}

fn options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    Ok(PgConnectOptions::from_str(url)?.application_name("atdirectory"))
}

fn pool(url: &str, max: u32, timeout: Duration) -> Result<PgPool, sqlx::Error> {
    // Lazy: a database that is down later (or at start, for reads) must not stop the directory.
    Ok(PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(timeout)
        .connect_lazy_with(options(url)?))
}

impl Db {
    pub fn new(
        url: &str,
        read_url: Option<&str>,
        max_connections: u32,
        timeout: Duration,
        metrics: Metrics,
    ) -> Result<Self, DbError> {
        let write = pool(url, max_connections, timeout)?;
        let read = match read_url {
            Some(r) => pool(r, max_connections, timeout)?,
            None => write.clone(),
        };
        Ok(Self {
            write,
            read,
            has_replica: read_url.is_some(),
            timeout,
            metrics,
        })
    }

    /// The primary pool, for LISTEN.
    pub fn primary(&self) -> &PgPool {
        &self.write
    }

    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(&self.write).await
    }

    /// Times one database operation, bounds it by the configured timeout and counts its failures.
    async fn observe<T, F>(&self, op: &'static str, fut: F) -> Result<T, DbError>
    where
        F: Future<Output = Result<T, DbError>>,
    {
        let start = Instant::now();
        let result = match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(DbError::Timeout(self.timeout)),
        };
        let label = OpLabel { op };
        self.metrics
            .db_latency
            .get_or_create(&label)
            .observe(start.elapsed().as_secs_f64());
        if let Err(e) = &result {
            self.metrics.db_errors.get_or_create(&label).inc();
            tracing::warn!(op, error = %e, "database operation failed");
        }
        result
    }

    /// Checks the primary and, when configured, the read replica: lookups need the one, writes and
    /// change notifications the other.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.observe("ping", queries::ping(&self.write)).await?;
        if self.has_replica {
            self.observe("ping_replica", queries::ping(&self.read))
                .await?;
        }
        Ok(())
    }

    /// The address of `name` (an atSign without `@`) for the root protocol.
    pub async fn lookup(&self, name: &str) -> Result<Option<(String, u16)>, DbError> {
        self.observe("lookup", queries::lookup(&self.read, name))
            .await
    }

    pub async fn get(&self, name: &str) -> Result<Option<Registration>, DbError> {
        self.observe("get", queries::get(&self.read, name)).await
    }

    pub async fn list(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Registration>, DbError> {
        self.observe("list", queries::list(&self.read, after, limit))
            .await
    }

    pub async fn put(
        &self,
        name: &str,
        host: &str,
        port: u16,
        owner: &str,
        force: bool,
    ) -> Result<PutOutcome, DbError> {
        self.observe(
            "put",
            queries::put(&self.write, name, host, port, owner, force),
        )
        .await
    }

    pub async fn delete(
        &self,
        name: &str,
        owner: Option<&str>,
        force: bool,
    ) -> Result<DeleteOutcome, DbError> {
        self.observe("delete", queries::delete(&self.write, name, owner, force))
            .await
    }
}
