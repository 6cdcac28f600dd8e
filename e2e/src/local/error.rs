//! What can go wrong bringing the local cluster up (or down).

use std::path::{Path, PathBuf};

use atfleet_cluster::ClusterError;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {message}")]
    Command { what: String, message: String },
    #[error("certificates: {0}")]
    Pki(String),
    #[error("control plane: {0}")]
    Cluster(#[from] ClusterError),
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("bad manifest: {0}")]
    Manifest(String),
}

impl LocalError {
    pub(crate) fn io(path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> LocalError {
        let path = path.as_ref().to_path_buf();
        move |source| LocalError::Io { path, source }
    }
}
