//! The benchmark harness behind `make bench`: each benchmark starts the release binaries as their
//! own processes, measures a figure and its baseline in the same run, and adds a [`report::Section`].
//! `atfleet-bench` writes the report as JSON, Markdown and latency PNGs.

pub mod atserver;
pub mod directory;
pub mod echo;
pub mod load;
pub mod machine;
pub mod notify;
pub mod operator;
pub mod pki;
pub mod plot;
pub mod process;
pub mod report;
pub mod sqlite;
pub mod stats;

use std::path::{Path, PathBuf};
use std::time::Instant;

use report::{Report, Section};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("atProtocol client: {0}")]
    Client(#[from] at_protocol::client::ClientError),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl BenchError {
    pub(crate) fn io(path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> BenchError {
        let path = path.as_ref().to_path_buf();
        move |source| BenchError::Io { path, source }
    }
}

/// How big a run is: `smoke` checks the harness end to end in seconds and times nothing of note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Full,
    Smoke,
}

impl Mode {
    /// `full` in a full run, `smoke` in a smoke run.
    pub fn pick(self, full: usize, smoke: usize) -> usize {
        match self {
            Mode::Full => full,
            Mode::Smoke => smoke,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Where `atserver`, `atdirectory`, `atfleet-operator` are.
    pub bin_dir: PathBuf,
    /// This harness's own binary (it serves the echo baseline as a subcommand).
    pub bench_exe: PathBuf,
    /// Where report.json, report.md and the PNGs go.
    pub out_dir: PathBuf,
    pub mode: Mode,
    /// A PostgreSQL server for the atDirectory; its figures are skipped without one.
    pub database_url: Option<String>,
    /// Run only the sections whose id is listed (all when empty).
    pub only: Vec<String>,
    /// How long building the binaries took before this run (`make bench` measures it).
    pub build_seconds: Option<f64>,
    /// The limit for build plus run; the report says whether the run kept to it.
    pub limit_seconds: Option<f64>,
}

/// Everything a benchmark needs: binaries, a scratch directory, the PKI and a log file.
pub struct Ctx {
    pub bin_dir: PathBuf,
    pub bench_exe: PathBuf,
    pub out_dir: PathBuf,
    pub mode: Mode,
    pub database_url: Option<String>,
    pub work: tempfile::TempDir,
    pub pki: pki::Pki,
    /// Children's stderr goes here.
    pub log: PathBuf,
}

impl Ctx {
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    pub fn reps(&self) -> usize {
        self.mode.pick(5, 1)
    }

    /// A fresh directory under the scratch directory.
    pub fn dir(&self, name: &str) -> Result<PathBuf, BenchError> {
        let d = self.work.path().join(name);
        std::fs::create_dir_all(&d).map_err(BenchError::io(&d))?;
        Ok(d)
    }
}

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
