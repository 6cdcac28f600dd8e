//! The short crash section of `make reliability` against the debug `atserver` and `atdirectory`:
//! a few SIGKILL cycles under mixed load, every promise checked. Nothing is timed here.

use std::path::{Path, PathBuf};

use atfleet_e2e::reliability::{crash, Ctx, Scale};

fn bin_dir() -> PathBuf {
    // The test runs as <target>/debug/deps/<test>-<hash>; the binaries sit in <target>/debug.
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    for bin in ["atserver", "atdirectory"] {
        assert!(
            dir.join(bin).is_file(),
            "{} is missing: build it first (cargo build -p atserver -p atdirectory; `make test` does)",
            dir.join(bin).display()
        );
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_crash_section_loses_and_duplicates_nothing() {
    let out = tempfile::tempdir().expect("tempdir");
    let ctx = Ctx::new(bin_dir(), out.path().to_path_buf(), Scale::Short).expect("context");
    let report = crash::run(&ctx).await.expect("the crash section runs");
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    eprintln!("{json}");
    assert!(report.passed(), "{json}");
    for zero in ["lost", "duplicated", "sync gaps"] {
        assert_eq!(report.value(zero), Some(0.0), "{zero}: {json}");
    }
    assert_eq!(report.value("kill -9 cycles"), Some(10.0), "{json}");
    // The load really ran: writes, notifications and enrollments were acknowledged and checked.
    for some in [
        "acknowledged updates and deletes",
        "acknowledged notifications",
        "acknowledged enrollment requests",
        "sync entries replayed",
    ] {
        assert!(report.value(some).unwrap_or(0.0) > 0.0, "{some}: {json}");
    }
}
