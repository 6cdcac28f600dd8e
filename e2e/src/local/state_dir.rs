//! The state directory: ours (marked) or empty, and emptied before a new cluster starts.

use std::path::{Path, PathBuf};

use super::error::LocalError;

/// Marks a state directory as ours; a marked directory is emptied on the next start (a new
/// cluster starts from an empty etcd, database and node).
const MARKER: &str = ".atfleet-local";

pub(super) fn prepare_state_dir(dir: &Path) -> Result<(), LocalError> {
    std::fs::create_dir_all(dir).map_err(LocalError::io(dir))?;
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(LocalError::io(dir))?
        .flatten()
        .map(|e| e.path())
        .collect();
    if !entries.is_empty() {
        if !dir.join(MARKER).exists() {
            return Err(LocalError::Command {
                what: format!("state directory {}", dir.display()),
                message:
                    "not empty and not made by atfleet-local: choose an empty or new directory"
                        .into(),
            });
        }
        for path in entries {
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(LocalError::io(&path))?;
        }
    }
    let marker = dir.join(MARKER);
    std::fs::write(&marker, "").map_err(LocalError::io(&marker))
}
