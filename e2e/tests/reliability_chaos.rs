//! The short `chaos` section of `make reliability` against the debug `atfleet-operator` and
//! `atdirectory`: a rollout of 20 Atsigns and their deletion on its own upstream control plane,
//! with API faults and the operator SIGKILLed and restarted. Asserts the promises (converged, no
//! duplicate children, nothing left registered or behind after deletion), never timings.

use std::path::{Path, PathBuf};

use atfleet_e2e::reliability::{chaos, Ctx, Scale};

fn debug_bin_dir() -> PathBuf {
    // The test runs as <target>/debug/deps/<test>-<hash>; the binaries sit in <target>/debug.
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    for bin in ["atdirectory", "atfleet-operator"] {
        assert!(
            dir.join(bin).is_file(),
            "{} is missing: build it first (cargo build -p atdirectory -p atfleet-operator; `make test` does)",
            dir.join(bin).display()
        );
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operator_chaos_short() {
    let out = tempfile::tempdir().expect("tempdir");
    let ctx = Ctx::new(debug_bin_dir(), out.path().to_path_buf(), Scale::Short).expect("context");
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
