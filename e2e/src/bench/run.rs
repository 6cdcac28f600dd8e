//! The run: every benchmark (or those asked for) in turn, timed, and the report written.

use std::time::Instant;

use super::context::Ctx;
use super::error::BenchError;
use super::options::{Mode, Options};
use super::report::{Report, Section};
use super::{atserver, directory, machine, notify, operator, pki};

type SectionResult = Result<Vec<Section>, BenchError>;

/// Runs every benchmark (or those in `only`) and writes the report; a benchmark that fails is kept
/// in the report as not measured, with its error.
pub async fn run(opts: Options) -> Result<Report, BenchError> {
    let started = Instant::now();
    let started_at = jiff::Timestamp::now().to_string();
    let load_before = machine::load();
    std::fs::create_dir_all(&opts.out_dir).map_err(BenchError::io(&opts.out_dir))?;
    let work = tempfile::tempdir().map_err(BenchError::io(std::env::temp_dir()))?;
    let pki = pki::Pki::create(work.path())?;
    let log = opts.out_dir.join("children.log");
    let _ = std::fs::remove_file(&log);
    let ctx = Ctx {
        bin_dir: opts.bin_dir.clone(),
        bench_exe: opts.bench_exe.clone(),
        out_dir: opts.out_dir.clone(),
        mode: opts.mode,
        database_url: opts.database_url.clone(),
        work,
        pki,
        log,
    };
    let wanted = |id: &str| opts.only.is_empty() || opts.only.iter().any(|o| o == id);
    let mut sections = Vec::new();
    if wanted("throughput") {
        timed(&mut sections, "throughput", atserver::throughput(&ctx)).await;
    }
    if wanted("notification") {
        timed(&mut sections, "notification", notify::run(&ctx)).await;
    }
    if wanted("memory") {
        timed(&mut sections, "memory", atserver::memory(&ctx)).await;
    }
    if wanted("startup") {
        timed(&mut sections, "startup", atserver::startup(&ctx)).await;
    }
    if wanted("directory") {
        timed(&mut sections, "directory", directory::run(&ctx)).await;
    }
    if wanted("operator") {
        timed(&mut sections, "operator", operator::run(&ctx)).await;
    }
    let report = Report {
        mode: match opts.mode {
            Mode::Full => "full".into(),
            Mode::Smoke => "smoke".into(),
        },
        started_at,
        duration_seconds: started.elapsed().as_secs_f64(),
        build_seconds: opts.build_seconds,
        limit_seconds: opts.limit_seconds,
        within_limit: None,
        machine: machine::describe(load_before),
        sections,
    }
    .judge_limit();
    report.write(&opts.out_dir)?;
    Ok(report)
}

/// Runs one benchmark, says how long it took, and keeps its sections (or its failure) with that
/// wall time.
async fn timed(
    sections: &mut Vec<Section>,
    id: &str,
    bench: impl std::future::Future<Output = SectionResult>,
) {
    eprintln!("atfleet-bench: {id} ...");
    let started = Instant::now();
    let result = bench.await;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "atfleet-bench: {id} took {seconds:.1} s{}",
        if result.is_err() { " and failed" } else { "" }
    );
    let mut kept = match result {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(section = id, error = %e, "benchmark failed");
            let mut s = Section::new(id, id, "the benchmark failed before it finished".into());
            s.not_measured(id, format!("benchmark failed: {e}"));
            vec![s]
        }
    };
    for s in &mut kept {
        s.seconds = seconds;
    }
    sections.append(&mut kept);
}
