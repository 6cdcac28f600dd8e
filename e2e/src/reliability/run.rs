//! The run: every section (or those asked for) in turn, timed, and the report written.

use std::time::Instant;

use super::context::Ctx;
use super::error::ReliabilityError;
use super::options::Options;
use super::report::{Report, SectionReport};

/// Runs every section (or those in `only`) and writes the report. A section that fails to run is
/// kept in the report, failed, with its error.
pub async fn run(opts: Options) -> Result<Report, ReliabilityError> {
    let started = Instant::now();
    let started_at = jiff::Timestamp::now().to_string();
    let ctx = Ctx::new(opts.bin_dir.clone(), opts.out_dir.clone(), opts.scale)?;
    let _ = std::fs::remove_file(&ctx.log);
    let wanted = |id: &str| opts.only.is_empty() || opts.only.iter().any(|o| o == id);
    let mut sections = Vec::new();
    if wanted("crash") {
        sections.push(timed("crash", super::crash::run(&ctx)).await);
    }
    if wanted("outage") {
        sections.push(timed("outage", super::outage::run(&ctx)).await);
    }
    if wanted("chaos") {
        sections.push(timed("chaos", super::chaos::run(&ctx)).await);
    }
    if wanted("hostile") {
        sections.push(timed("hostile", super::hostile::run(&ctx)).await);
    }
    let report = Report {
        scale: opts.scale,
        started_at,
        duration_seconds: started.elapsed().as_secs_f64(),
        machine: crate::bench::machine::describe(crate::bench::machine::load()),
        sections,
    };
    report.write(&opts.out_dir)?;
    Ok(report)
}

async fn timed(
    id: &str,
    section: impl std::future::Future<Output = Result<SectionReport, ReliabilityError>>,
) -> SectionReport {
    eprintln!("atfleet-reliability: {id} ...");
    let started = Instant::now();
    let mut report = match section.await {
        Ok(r) => r,
        Err(e) => SectionReport::failed_to_run(id, &e),
    };
    report.seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "atfleet-reliability: {id} took {:.1} s: {}",
        report.seconds,
        if report.passed() { "passed" } else { "FAILED" }
    );
    report
}
