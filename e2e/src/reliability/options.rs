//! What a reliability run is told: binaries, output, scale, and which sections to run.

use std::path::PathBuf;

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
