//! What can go wrong in a reliability section, including a promise that did not hold.

use std::path::{Path, PathBuf};

use crate::bench::BenchError;

#[derive(Debug, thiserror::Error)]
pub enum ReliabilityError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// A promise the suite checks did not hold (a lost write, a duplicate, a wrong answer).
    #[error("{0}")]
    Violated(String),
    #[error(transparent)]
    Bench(#[from] BenchError),
    #[error("atProtocol client: {0}")]
    Client(#[from] at_protocol::client::ClientError),
}

impl ReliabilityError {
    pub fn io(path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> ReliabilityError {
        let path = path.as_ref().to_path_buf();
        move |source| ReliabilityError::Io { path, source }
    }
}
