//! The context every reliability section runs in.

use std::path::PathBuf;

use super::error::ReliabilityError;
use super::options::Scale;
use crate::bench::pki::Pki;

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
