//! Atsign's Python SDK (atsdk) for interoperability tests.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The Python with atsdk: `ATFLEET_PYTHON` (set by `make test`), else whatever
/// `scripts/python-env` creates and prints.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("ATFLEET_PYTHON") {
        if !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/python-env");
    let out = std::process::Command::new(script)
        .output()
        .expect("run scripts/python-env");
    assert!(
        out.status.success(),
        "scripts/python-env failed (set ATFLEET_PYTHON to a python with atsdk): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Runs the interop `script` with `args` under [`python`], trusting the CA in `ca_file` (atsdk
/// has no CA option; OpenSSL reads `SSL_CERT_FILE`), for at most `limit`. Panics with its output
/// unless it succeeds and prints `marker`; returns its stdout.
pub async fn run_script<A: AsRef<OsStr>>(
    script: &str,
    args: &[A],
    ca_file: &Path,
    limit: Duration,
    marker: &str,
) -> String {
    let run = tokio::process::Command::new(python())
        .arg(script)
        .args(args)
        .env("SSL_CERT_FILE", ca_file)
        .env("PYTHONUNBUFFERED", "1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(limit, run)
        .await
        .expect("atsdk script finished in time")
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains(marker),
        "atsdk run failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
