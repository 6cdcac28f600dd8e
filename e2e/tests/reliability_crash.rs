//! The short crash section of `make reliability` against the debug `atserver` and `atdirectory`:
//! a few SIGKILL cycles under mixed load, every promise checked. Nothing is timed here.

use atfleet_e2e::reliability::{self, crash, Ctx, Scale};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_crash_section_loses_and_duplicates_nothing() {
    let out = tempfile::tempdir().expect("tempdir");
    let ctx = Ctx::new(
        reliability::test_bin_dir(&["atserver", "atdirectory"]).expect("binaries"),
        out.path().to_path_buf(),
        Scale::Short,
    )
    .expect("context");
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
