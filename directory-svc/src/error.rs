//! Errors of the library: configuration, startup and database failures.
//!
//! Each message carries its cause in its own text (logs print `%e`), so no variant exposes a
//! `source()`: chains printed with `{:#}` would otherwise repeat it.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("I/O on {what}: {cause}")]
    Io { what: String, cause: std::io::Error },
}

impl Error {
    pub fn io(what: impl Into<String>, cause: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            cause,
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Database(e)
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Error::Migrate(e)
    }
}
