//! The short `chaos` section of `make reliability` against the debug `atfleet-operator` and
//! `atdirectory`: a rollout of 20 Atsigns and their deletion on its own upstream control plane,
//! with API faults and the operator SIGKILLed and restarted. Asserts the promises (converged, no
//! duplicate children, nothing left registered or behind after deletion), never timings.

use atfleet_e2e::reliability::{self, chaos, Ctx, Scale};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operator_chaos_short() {
    let out = tempfile::tempdir().expect("tempdir");
    let ctx = Ctx::new(
        reliability::test_bin_dir(&["atdirectory", "atfleet-operator"]).expect("binaries"),
        out.path().to_path_buf(),
        Scale::Short,
    )
    .expect("context");
    let report = chaos::run(&ctx).await.expect("the chaos section runs");
    for f in &report.figures {
        eprintln!("{}: {} {}", f.name, f.value, f.unit);
    }
    assert!(report.passed(), "{report:#?}");
    for zero in [
        "duplicate children",
        "Ready Atsigns not registered in the atDirectory",
        "atSigns left registered after deletion",
        "children left after deletion",
        "operator exits the harness did not cause",
    ] {
        assert_eq!(report.value(zero), Some(0.0), "{zero}");
    }
    assert_eq!(report.value("Atsigns"), Some(20.0));
    assert!(report.value("operator kills (SIGKILL)").unwrap_or(0.0) >= 1.0);
    assert!(report.value("API faults injected").unwrap_or(0.0) > 0.0);
    assert!(
        report
            .value("seconds to converge (every Atsign Ready)")
            .is_some(),
        "the rollout did not converge"
    );
}
