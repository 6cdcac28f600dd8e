//! The context every benchmark runs in.

use std::path::PathBuf;

use super::error::BenchError;
use super::options::Mode;
use super::pki;

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
