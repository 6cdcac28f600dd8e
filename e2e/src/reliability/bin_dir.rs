//! Where a test of this crate finds the workspace binaries.

use std::path::{Path, PathBuf};

use super::error::ReliabilityError;

/// Where the workspace binaries are for a test of this crate: a test runs as
/// `<target>/debug/deps/<test>-<hash>`, and `cargo build` puts the binaries in `<target>/debug`.
/// Names each of `required` that is missing, with the command that builds it.
pub fn test_bin_dir(required: &[&str]) -> Result<PathBuf, ReliabilityError> {
    let exe = std::env::current_exe().map_err(ReliabilityError::io("the test executable"))?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| ReliabilityError::Setup(format!("{} has no target dir", exe.display())))?
        .to_path_buf();
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|bin| !dir.join(bin).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(ReliabilityError::Setup(format!(
            "{} missing from {}: build them first (cargo build --workspace --bins; `make test` does)",
            missing.join(", "),
            dir.display()
        )));
    }
    Ok(dir)
}
