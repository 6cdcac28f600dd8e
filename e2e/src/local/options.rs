//! What `LocalCluster::up` is told: where state goes and where the binaries are.

use std::path::{Path, PathBuf};

use super::error::LocalError;

#[derive(Debug, Clone)]
pub struct Options {
    /// Where files, logs, pod directories and volumes go (created if absent).
    pub state_dir: PathBuf,
    /// Where `atdirectory`, `atfleet-operator`, `atserver` and `atctl` are.
    pub bin_dir: PathBuf,
    /// Where etcd, kube-apiserver, kube-controller-manager, kube-scheduler (and kubectl) are;
    /// `None`: [`atfleet_cluster::binaries`] (built once by `scripts/controlplane-build`).
    pub controlplane_bin: Option<PathBuf>,
    /// Create a database in this server instead of starting a PostgreSQL cluster.
    pub database_url: Option<String>,
    /// helm, to render the chart's RBAC; `None`: [`identity::helm`](super::identity::helm).
    pub helm: Option<PathBuf>,
}

impl Options {
    pub fn new(state_dir: impl Into<PathBuf>, bin_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            bin_dir: bin_dir.into(),
            controlplane_bin: None,
            database_url: None,
            helm: None,
        }
    }
}

/// The target directory's `debug/` (or `release/`) holding the binaries, from the running
/// executable (a test executable lives one level down, in `deps/`).
pub fn bin_dir_of_current_exe() -> Result<PathBuf, LocalError> {
    let exe = std::env::current_exe().map_err(LocalError::io("current executable"))?;
    let mut dir = exe
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    Ok(dir)
}
