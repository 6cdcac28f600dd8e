//! The system of record: Postgres through sqlx with runtime-checked queries (no database needed to build).

mod error;
mod pool;
mod queries;

pub use error::DbError;
pub use pool::Db;
pub use queries::{DeleteOutcome, PutOutcome, Registration};

/// The channel the table's trigger notifies on every change (see the migrations).
pub const CHANGES_CHANNEL: &str = "atdirectory_changes";
