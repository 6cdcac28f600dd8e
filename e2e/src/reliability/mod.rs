//! The reliability suite behind `make reliability`: each section drives real processes (atServers,
//! atDirectories, PostgreSQL, the upstream control plane and the operator) through faults and counts
//! what a user would lose. `Scale::Short` is the version `make test` runs; `Scale::Full` is the
//! long run whose figures go in `target/reliability/report.{json,md}`.

pub mod chaos;
pub mod crash;
pub mod hostile;
pub mod outage;
pub mod report;
pub mod servers;

use std::path::{Path, PathBuf};
use std::time::Instant;

use report::{Report, SectionReport};

use crate::bench::pki::Pki;
use crate::bench::BenchError;

#[derive(Debug, thiserror::Error)]
pub enum ReliabilityError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// A promise the suite checks did not hold (a lost write, a duplicate, a wrong answer).
    #[error("{0}")]
    Violated(String),
    #[error(transparent)]
    Bench(#[from] BenchError),
    #[error("atProtocol client: {0}")]
    Client(#[from] at_protocol::client::ClientError),
}

impl ReliabilityError {
    pub fn io(path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> ReliabilityError {
        let path = path.as_ref().to_path_buf();
        move |source| ReliabilityError::Io { path, source }
    }
}

/// How long a run is: `Short` runs in `make test` and checks every promise on a few cycles;
/// `Full` is the figure-producing run of `make reliability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    Full,
    Short,
}

impl Scale {
    /// `full` in a full run, `short` in a short one.
    pub fn pick(self, full: usize, short: usize) -> usize {
        match self {
            Scale::Full => full,
            Scale::Short => short,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Where `atserver`, `atdirectory`, `atfleet-operator`, `atfleet-node-agent` are.
    pub bin_dir: PathBuf,
    /// Where report.json, report.md and children.log go.
    pub out_dir: PathBuf,
    pub scale: Scale,
    /// Run only the sections whose id is listed (all when empty): crash, outage, chaos, hostile.
    pub only: Vec<String>,
}

/// Everything a section needs: binaries, a scratch directory, a test PKI and a log file.
pub struct Ctx {
    pub bin_dir: PathBuf,
    pub out_dir: PathBuf,
    pub scale: Scale,
    pub work: tempfile::TempDir,
    pub pki: Pki,
    /// Children's stderr goes here.
    pub log: PathBuf,
}

impl Ctx {
    /// A context with a fresh scratch directory and PKI; `log` is created under `out_dir`.
    pub fn new(bin_dir: PathBuf, out_dir: PathBuf, scale: Scale) -> Result<Ctx, ReliabilityError> {
        std::fs::create_dir_all(&out_dir).map_err(ReliabilityError::io(&out_dir))?;
        let work = tempfile::tempdir().map_err(ReliabilityError::io(std::env::temp_dir()))?;
        let pki = Pki::create(work.path())?;
        let log = out_dir.join("children.log");
        Ok(Ctx {
            bin_dir,
            out_dir,
            scale,
            work,
            pki,
            log,
        })
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// A fresh directory under the scratch directory.
    pub fn dir(&self, name: &str) -> Result<PathBuf, ReliabilityError> {
        let d = self.work.path().join(name);
        std::fs::create_dir_all(&d).map_err(ReliabilityError::io(&d))?;
        Ok(d)
    }
}

/// Where the workspace binaries are for a test of this crate: a test runs as
/// `<target>/debug/deps/<test>-<hash>`, and `cargo build` puts the binaries in `<target>/debug`.
/// Names each of `required` that is missing, with the command that builds it.
pub fn test_bin_dir(required: &[&str]) -> Result<PathBuf, ReliabilityError> {
    let exe = std::env::current_exe().map_err(ReliabilityError::io("the test executable"))?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| ReliabilityError::Setup(format!("{} has no target dir", exe.display())))?
        .to_path_buf();
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|bin| !dir.join(bin).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(ReliabilityError::Setup(format!(
            "{} missing from {}: build them first (cargo build --workspace --bins; `make test` does)",
            missing.join(", "),
            dir.display()
        )));
    }
    Ok(dir)
}

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
        sections.push(timed("crash", crash::run(&ctx)).await);
    }
    if wanted("outage") {
        sections.push(timed("outage", outage::run(&ctx)).await);
    }
    if wanted("chaos") {
        sections.push(timed("chaos", chaos::run(&ctx)).await);
    }
    if wanted("hostile") {
        sections.push(timed("hostile", hostile::run(&ctx)).await);
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
