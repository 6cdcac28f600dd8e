//! What a run of the benchmarks is told: binaries, output, size, and which sections to run.

use std::path::PathBuf;

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
