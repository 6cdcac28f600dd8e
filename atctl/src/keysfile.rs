//! Where keys files live and how they are written: into a temporary file beside the target, renamed
//! into place only at the very end, never over an existing file unless asked.

use std::io::Write;
use std::path::{Path, PathBuf};

use at_protocol::crypto::{AtKeys, AtKeysFile};
use at_protocol::AtSign;

use crate::error::{CtlError, Result};

/// `--keys-dir`, else `~/.atsign/keys`.
pub fn keys_dir(flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| CtlError::usage("HOME is not set: pass --keys-dir"))?;
    Ok(PathBuf::from(home).join(".atsign").join("keys"))
}

/// `<dir>/@alice_key.atKeys`
pub fn path_for(dir: &Path, atsign: &AtSign) -> PathBuf {
    dir.join(AtKeysFile::file_name(atsign.as_str()))
}

/// The atSign of the only keys file in `dir`.
pub fn only_atsign(dir: &Path) -> Result<AtSign> {
    let suffix = "_key.atKeys";
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter_map(|n| n.strip_suffix(suffix).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    match found.as_slice() {
        [one] => crate::atsign_arg::parse_atsign(one),
        [] => Err(CtlError::usage(format!(
            "no keys file in {}: pass --atsign, or onboard first",
            dir.display()
        ))),
        several => Err(CtlError::usage(format!(
            "several keys files in {} ({}): pass --atsign to choose one",
            dir.display(),
            several.join(", ")
        ))),
    }
}

/// Fails early (before anything changes on a server) when the keys file exists and `force` is off.
pub fn check_writable(path: &Path, force: bool) -> Result<()> {
    if path.exists() && !force {
        return Err(CtlError::usage(format!(
            "{} already exists; pass --force to overwrite it (the keys in it stop working once the \
             new ones are in use)",
            path.display()
        )));
    }
    Ok(())
}

/// A keys file written to a temporary file (mode 0600) in the target folder. Dropping it without
/// [`PendingKeys::commit`] removes it, so a failed command leaves no file behind.
pub struct PendingKeys {
    temp: tempfile::NamedTempFile,
    target: PathBuf,
}

impl PendingKeys {
    pub fn prepare(dir: &Path, atsign: &AtSign, keys: &AtKeys) -> Result<Self> {
        create_private_dir(dir)?;
        let json = keys.to_file(Some(atsign.as_str()))?.to_json()?;
        // tempfile creates the file with mode 0600 on Unix.
        let mut temp = tempfile::Builder::new()
            .prefix(".atctl-")
            .suffix(".atKeys.tmp")
            .tempfile_in(dir)
            .map_err(|e| CtlError::other(format!("creating a file in {}: {e}", dir.display())))?;
        temp.write_all(json.as_bytes())
            .and_then(|_| temp.as_file().sync_all())
            .map_err(|e| CtlError::other(format!("writing {}: {e}", temp.path().display())))?;
        Ok(Self {
            temp,
            target: path_for(dir, atsign),
        })
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Renames the file into place. If that fails the temporary file is kept (the server already
    /// uses these keys) and the error names it.
    pub fn commit(self, force: bool) -> Result<PathBuf> {
        let target = self.target;
        let outcome = if force {
            self.temp.persist(&target)
        } else {
            self.temp.persist_noclobber(&target)
        };
        match outcome {
            Ok(_) => Ok(target),
            Err(e) => {
                let kept = e.file.into_temp_path().keep().ok();
                Err(CtlError::other(format!(
                    "could not move the keys file to {}: {}; the new keys are in {}: move that file \
                     there yourself, the server already expects these keys",
                    target.display(),
                    e.error,
                    kept.map_or_else(|| "(lost)".to_owned(), |p| p.display().to_string())
                )))
            }
        }
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| CtlError::other(format!("creating {}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_keys_are_private_and_vanish_unless_committed() {
        let dir = tempfile::tempdir().unwrap();
        let alice = AtSign::parse("@alice").unwrap();
        let keys = AtKeys::generate().unwrap();
        let pending = PendingKeys::prepare(dir.path(), &alice, &keys).unwrap();
        drop(pending);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let pending = PendingKeys::prepare(dir.path(), &alice, &keys).unwrap();
        let path = pending.commit(false).unwrap();
        assert_eq!(path, dir.path().join("@alice_key.atKeys"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = AtKeysFile::load(&path).unwrap().decrypt().unwrap();
        assert_eq!(loaded, keys);

        assert!(check_writable(&path, false).is_err());
        assert!(check_writable(&path, true).is_ok());
        let other = AtKeys::generate().unwrap();
        let again = PendingKeys::prepare(dir.path(), &alice, &other).unwrap();
        assert!(again.commit(false).is_err(), "no clobber without --force");
        assert_eq!(AtKeysFile::load(&path).unwrap().decrypt().unwrap(), keys);
    }
}
