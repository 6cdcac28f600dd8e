//! Locating the workspace's binaries from a test executable.

use std::path::{Path, PathBuf};

/// The profile directory (`<target>/debug`) holding the binaries; a test executable lives in its
/// `deps/` folder.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    dir
}

/// The binary `name` of the workspace, which must already be built (`hint` says how).
pub fn workspace_bin(name: &str, hint: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: build it first ({hint})",
        path.display()
    );
    path
}

/// The binary `name` of package `package`, built with `cargo` (this test's) when missing.
pub fn workspace_bin_or_build(name: &str, package: &str, cargo: &str) -> PathBuf {
    let profile = profile_dir();
    let path = profile.join(name);
    if !path.is_file() {
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", package, "--bin", name])
            .env(
                "CARGO_TARGET_DIR",
                profile.parent().expect("target directory"),
            )
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build -p {package} failed");
    }
    path
}
