//! The short `outage` section of `make reliability` against the debug `atdirectory`: a PostgreSQL
//! primary with a synchronous standby, two directory replicas, one restart and one failover under
//! lookup and registration load. Asserts the promises (no wrong answer, no cached lookup refused,
//! no acknowledged registration lost, registrations resumed), never how long anything took.

use atfleet_e2e::reliability::{self, outage, Ctx, Scale};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn directory_outages_short() {
    let out = tempfile::tempdir().expect("tempdir");
    let ctx = Ctx::new(
        reliability::test_bin_dir(&["atdirectory"]).expect("binaries"),
        out.path().to_path_buf(),
        Scale::Short,
    )
    .expect("context");
    let report = outage::run(&ctx).await.expect("the outage section runs");
    for f in &report.figures {
        eprintln!("{}: {} {}", f.name, f.value, f.unit);
    }
    let log = std::fs::read_to_string(&ctx.log).unwrap_or_default();
    assert!(report.passed(), "{:#?}\nchildren's log:\n{log}", report);
    for zero in [
        "wrong lookup answers",
        "cached lookups refused",
        "acknowledged registrations lost after the failover",
    ] {
        assert_eq!(report.value(zero), Some(0.0), "{zero}");
    }
    let answered = report.value("lookups answered").expect("lookups answered");
    assert!(answered > 0.0, "no lookup was answered");
    let in_outage = report
        .value("lookups answered while the database was down")
        .expect("answered during the outage");
    assert!(
        in_outage > 0.0,
        "no lookup was answered while the database was down"
    );
    assert!(report.value("registrations acknowledged").unwrap_or(0.0) > 0.0);
    for what in ["restart", "failover"] {
        let name = format!("seconds until registrations resumed after a {what} (longest)");
        assert!(
            report.value(&name).is_some(),
            "registrations did not resume after a {what}"
        );
    }
}
