//! What a database call can fail with.

use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum DbError {
    #[error("{0}")]
    Sqlx(sqlx::Error),
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
    #[error("unexpected data in the database: {0}")]
    Data(String),
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        DbError::Sqlx(e)
    }
}
