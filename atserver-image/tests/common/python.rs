//! The Python interpreter that has Atsign's SDK (atsdk) installed.

use std::path::PathBuf;

/// `ATFLEET_PYTHON` (set by `make test`), else whatever `scripts/python-env` creates and prints.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("ATFLEET_PYTHON") {
        return PathBuf::from(p);
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/python-env");
    let out = std::process::Command::new(script)
        .output()
        .expect("scripts/python-env runs");
    assert!(
        out.status.success(),
        "python-env failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}
