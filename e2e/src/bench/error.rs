//! What can go wrong in a benchmark.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("atProtocol client: {0}")]
    Client(#[from] at_protocol::client::ClientError),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl BenchError {
    pub(crate) fn io(path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> BenchError {
        let path = path.as_ref().to_path_buf();
        move |source| BenchError::Io { path, source }
    }
}
