//! The kubelet's atomic volume layout, so a process reading a Secret or ConfigMap volume while it
//! is rewritten never sees half a write:
//!
//! ```text
//! <volume>/..2026_12_05_01_52_33.123456789/tls.crt   the files of one version
//! <volume>/..data -> ..2026_12_05_01_52_33.123456789  swapped by a rename
//! <volume>/tls.crt -> ..data/tls.crt                  what the process opens
//! ```
//!
//! A new version goes into a new timestamped directory; a `..data_tmp` symlink to it is renamed
//! over `..data` (one atomic step); then the top-level names get their symlinks and the old
//! directory is removed. The paths a process was given never change.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use jiff::Timestamp;

use super::error::{io, AgentError};

/// Relative path in the volume → (contents, mode).
pub type Payload = BTreeMap<String, (Vec<u8>, u32)>;

pub const DATA_DIR: &str = "..data";
const DATA_TMP: &str = "..data_tmp";

/// Writes `payload` as the volume at `dir`, replacing whatever version was there in one step.
/// Relative paths must have been checked to stay inside the volume.
pub fn write(dir: &Path, payload: &Payload) -> Result<(), AgentError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let version = new_version_dir(dir)?;
    let version_path = dir.join(&version);
    for (rel, (bytes, mode)) in payload {
        let path = version_path.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, bytes).map_err(io(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
            .map_err(io(&path))?;
    }
    // The swap: a rename over `..data` is atomic, so `..data` always names a complete version.
    let tmp = dir.join(DATA_TMP);
    remove_entry(&tmp)?;
    symlink(&version, &tmp).map_err(io(&tmp))?;
    let data = dir.join(DATA_DIR);
    std::fs::rename(&tmp, &data).map_err(io(&data))?;

    let visible: BTreeSet<&str> = payload.keys().filter_map(|rel| top_level(rel)).collect();
    for name in &visible {
        let link = dir.join(name);
        let target = Path::new(DATA_DIR).join(name);
        if std::fs::read_link(&link).ok().as_deref() == Some(target.as_path()) {
            continue;
        }
        // A plain file or directory left by an earlier layout gives way to the link.
        if std::fs::symlink_metadata(&link).is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir_all(&link).map_err(io(&link))?;
        }
        let tmp = dir.join(format!("..{name}.tmp"));
        remove_entry(&tmp)?;
        symlink(&target, &tmp).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &link).map_err(io(&link))?;
    }
    // Names the new version no longer has, and every older version.
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with("..") {
            if name != DATA_DIR && name != version && is_version(&name) {
                remove_entry(&path)?;
            }
        } else if !visible.contains(name.as_str())
            && std::fs::read_link(&path).is_ok_and(|t| t.starts_with(DATA_DIR))
        {
            remove_entry(&path)?;
        }
    }
    Ok(())
}

/// The first component of a relative path: the name a process sees in the volume.
fn top_level(rel: &str) -> Option<&str> {
    rel.split('/').find(|c| !c.is_empty())
}

/// `..2026_12_05_01_52_33.123456789`, as the kubelet names a version.
fn is_version(name: &str) -> bool {
    name.len() > 2 && name.as_bytes()[2].is_ascii_digit()
}

/// Creates `..<UTC time>.<nanoseconds>` (a counter after it when taken) and returns its name.
fn new_version_dir(dir: &Path) -> Result<String, AgentError> {
    let now = Timestamp::now();
    let base = format!(
        "..{}.{:09}",
        now.strftime("%Y_%m_%d_%H_%M_%S"),
        now.subsec_nanosecond()
    );
    for n in 0u32.. {
        let name = if n == 0 {
            base.clone()
        } else {
            format!("{base}{n}")
        };
        let path = dir.join(&name);
        match std::fs::create_dir(&path) {
            Ok(()) => {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    .map_err(io(&path))?;
                return Ok(name);
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(path)(e)),
        }
    }
    Err(AgentError::Unsupported(format!(
        "no free version directory in {}",
        dir.display()
    )))
}

/// Removes a file, symlink or directory; absent is fine.
fn remove_entry(path: &Path) -> Result<(), AgentError> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(io(path)(e)),
        _ => Ok(()),
    }
}

/// Copies what `src` names now (following the volume's links) to `dst`: a `subPath` mount sees
/// the version of its container's start, as with the kubelet's bind mount, not later refreshes.
pub fn pin(src: &Path, dst: &Path) -> Result<(), AgentError> {
    remove_entry(dst)?;
    let meta = std::fs::metadata(src).map_err(io(src))?;
    if meta.is_dir() {
        std::fs::create_dir_all(dst).map_err(io(dst))?;
        for entry in std::fs::read_dir(src).map_err(io(src))? {
            let entry = entry.map_err(io(src))?;
            let name = entry.file_name();
            // The versions and the swap link are the layout's, not the volume's contents.
            if name.to_string_lossy().starts_with("..") {
                continue;
            }
            pin(&entry.path(), &dst.join(name))?;
        }
    } else {
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::copy(src, dst).map_err(io(dst))?;
    }
    Ok(())
}

/// Whether `dir` holds a volume in this layout.
pub fn is_atomic(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join(DATA_DIR)).is_ok_and(|m| m.file_type().is_symlink())
}

/// The directory `..data` names now.
#[cfg(test)]
fn current_version(dir: &Path) -> Option<std::path::PathBuf> {
    std::fs::read_link(dir.join(DATA_DIR))
        .ok()
        .map(|v| dir.join(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    fn payload(entries: &[(&str, &str)]) -> Payload {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (v.as_bytes().to_vec(), 0o440)))
            .collect()
    }

    fn versions(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_version(n))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_kubelet_layout() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("tls");
        write(
            &dir,
            &payload(&[("tls.crt", "c1"), ("tls.key", "k1"), ("sub/ca.crt", "a")]),
        )
        .expect("write");
        let version = std::fs::read_link(dir.join("..data")).expect("..data is a link");
        assert!(is_version(&version.to_string_lossy()), "{version:?}");
        assert!(
            !version.is_absolute(),
            "links are relative, as the kubelet's"
        );
        assert_eq!(
            std::fs::read_link(dir.join("tls.crt")).expect("link"),
            Path::new("..data/tls.crt")
        );
        assert_eq!(
            std::fs::read_link(dir.join("sub")).expect("link"),
            Path::new("..data/sub")
        );
        assert_eq!(std::fs::read(dir.join("tls.crt")).expect("read"), b"c1");
        assert_eq!(std::fs::read(dir.join("sub/ca.crt")).expect("read"), b"a");
        let mode = std::fs::metadata(dir.join("tls.key"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o440);
        assert!(is_atomic(&dir));
    }

    #[test]
    fn a_new_version_replaces_the_old_one() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("v");
        write(&dir, &payload(&[("tls.crt", "c1"), ("old", "x")])).expect("write");
        let first = current_version(&dir).expect("version");
        write(&dir, &payload(&[("tls.crt", "c2"), ("new", "y")])).expect("rewrite");
        let second = current_version(&dir).expect("version");
        assert_ne!(first, second);
        assert!(!first.exists(), "the old version is removed");
        assert_eq!(versions(&dir).len(), 1);
        assert_eq!(std::fs::read(dir.join("tls.crt")).expect("read"), b"c2");
        assert_eq!(std::fs::read(dir.join("new")).expect("read"), b"y");
        assert!(
            std::fs::symlink_metadata(dir.join("old")).is_err(),
            "a key the new version lacks is gone"
        );
        assert!(std::fs::symlink_metadata(dir.join("..data_tmp")).is_err());
    }

    #[test]
    fn plain_files_of_an_earlier_layout_become_links() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("v");
        std::fs::create_dir_all(dir.join("nested")).expect("mkdir");
        std::fs::write(dir.join("tls.crt"), "plain").expect("write");
        std::fs::write(dir.join("nested/f"), "plain").expect("write");
        write(&dir, &payload(&[("tls.crt", "c"), ("nested/f", "n")])).expect("write");
        assert_eq!(std::fs::read(dir.join("tls.crt")).expect("read"), b"c");
        assert_eq!(std::fs::read(dir.join("nested/f")).expect("read"), b"n");
        assert!(std::fs::read_link(dir.join("nested")).is_ok());
    }

    /// A reader opening the file while versions are swapped in a loop reads one whole version
    /// every time: never an empty or partial file.
    #[test]
    fn a_reader_never_sees_half_a_write() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("v");
        let body = |g: usize| format!("{g:08}\n").repeat(4096);
        write(&dir, &payload(&[("tls.crt", &body(0))])).expect("write");
        let done = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicUsize::new(0));
        let path = dir.join("tls.crt");
        let reader = {
            let (done, reads) = (done.clone(), reads.clone());
            std::thread::spawn(move || {
                let mut torn = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    // Opened through links that may be swapped mid-resolution; what opens is whole.
                    let Ok(text) = std::fs::read_to_string(&path) else {
                        continue;
                    };
                    reads.fetch_add(1, Ordering::SeqCst);
                    let first = text.lines().next().unwrap_or_default().to_owned();
                    if text.len() != 9 * 4096 || text.lines().any(|l| l != first) {
                        torn.push(text.len());
                    }
                }
                torn
            })
        };
        for g in 1..300 {
            write(&dir, &payload(&[("tls.crt", &body(g))])).expect("write");
        }
        while reads.load(Ordering::SeqCst) < 50 {
            write(&dir, &payload(&[("tls.crt", &body(300))])).expect("write");
        }
        done.store(true, Ordering::SeqCst);
        let torn = reader.join().expect("reader");
        assert!(torn.is_empty(), "torn reads: {torn:?}");
        assert_eq!(versions(&dir).len(), 1);
    }

    #[test]
    fn a_pinned_sub_path_keeps_its_version() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("v");
        write(&dir, &payload(&[("tls.crt", "c1"), ("d/x", "x1")])).expect("write");
        let pinned = tmp.path().join("pinned");
        pin(&dir.join("tls.crt"), &pinned.join("file")).expect("pin file");
        pin(&dir, &pinned.join("whole")).expect("pin dir");
        write(&dir, &payload(&[("tls.crt", "c2"), ("d/x", "x2")])).expect("rewrite");
        assert_eq!(std::fs::read(pinned.join("file")).expect("read"), b"c1");
        assert_eq!(
            std::fs::read(pinned.join("whole/d/x")).expect("read"),
            b"x1"
        );
        assert!(!pinned.join("whole/..data").exists());
        assert_eq!(std::fs::read(dir.join("tls.crt")).expect("read"), b"c2");
    }
}
