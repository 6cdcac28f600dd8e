//! The short hostile-network section of `make reliability` against the debug `atserver` and
//! `atdirectory`: a couple of hundred hostile sessions while honest clients run. Every session
//! must be ended by the server; no latency is asserted on (the ratio is a figure of the full run).

use atfleet_e2e::reliability::{self, hostile, Ctx, Scale};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_hostile_section_ends_every_session() {
    let out = tempfile::tempdir().expect("tempdir");
    let ctx = Ctx::new(
        reliability::test_bin_dir(&["atserver", "atdirectory"]).expect("binaries"),
        out.path().to_path_buf(),
        Scale::Short,
    )
    .expect("context");
    let report = hostile::run(&ctx).await.expect("the hostile section runs");
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    eprintln!("{json}");
    assert!(report.error.is_none(), "{json}");
    assert!(report.violations.is_empty(), "{json}");
    assert_eq!(report.value("hostile sessions hung"), Some(0.0), "{json}");
    let started = report.value("hostile sessions started");
    assert_eq!(started, Some(200.0), "{json}");
    assert_eq!(
        report.value("hostile sessions ended by the server (close or error)"),
        started,
        "{json}"
    );
    // Every figure with a promise other than the latency ratio (not asserted: timing) is met.
    for f in &report.figures {
        if !f.name.contains("with / without") {
            assert_ne!(f.met, Some(false), "{}: {json}", f.name);
        }
    }
}
