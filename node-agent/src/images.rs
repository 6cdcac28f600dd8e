//! Which local binary stands in for a container image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Maps images to local programs: an explicit entry by image name (the repository's last path
/// segment, without tag or digest), else `<bin_dir>/<name>`.
#[derive(Debug, Clone, Default)]
pub struct ImageMap {
    pub bin_dir: PathBuf,
    pub overrides: BTreeMap<String, PathBuf>,
}

impl ImageMap {
    pub fn new(bin_dir: impl Into<PathBuf>) -> Self {
        Self {
            bin_dir: bin_dir.into(),
            overrides: BTreeMap::new(),
        }
    }

    /// Adds `name=path` (an image name as [`image_name`] gives it).
    pub fn with(mut self, name: &str, program: impl Into<PathBuf>) -> Self {
        self.overrides.insert(name.to_owned(), program.into());
        self
    }

    /// The program for `image`, or `None` for an image without a usable name.
    pub fn program(&self, image: &str) -> Option<PathBuf> {
        let name = image_name(image)?;
        Some(
            self.overrides
                .get(name)
                .cloned()
                .unwrap_or_else(|| self.bin_dir.join(name)),
        )
    }

    /// The program for a container `command[0]`: an existing absolute path as is, else the file
    /// of that base name in the binary directory.
    pub fn command(&self, command: &str) -> Option<PathBuf> {
        let path = Path::new(command);
        if path.is_absolute() && path.exists() {
            return Some(path.to_path_buf());
        }
        let name = path.file_name()?.to_str()?;
        Some(
            self.overrides
                .get(name)
                .cloned()
                .unwrap_or_else(|| self.bin_dir.join(name)),
        )
    }
}

/// `ghcr.io/atfleet/atserver:1.2@sha256:…` → `atserver`.
pub fn image_name(image: &str) -> Option<&str> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    let name = last.split(':').next().unwrap_or(last);
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_programs() {
        assert_eq!(
            image_name("ghcr.io/atfleet/atserver:latest"),
            Some("atserver")
        );
        assert_eq!(
            image_name("localhost:5000/x/atserver@sha256:ab"),
            Some("atserver")
        );
        assert_eq!(image_name("busybox"), Some("busybox"));
        assert_eq!(image_name(""), None);
        let map = ImageMap::new("/t/debug").with("busybox", "/bin/sleep");
        assert_eq!(
            map.program("ghcr.io/atfleet/atserver:latest"),
            Some(PathBuf::from("/t/debug/atserver"))
        );
        assert_eq!(map.program("busybox:1"), Some(PathBuf::from("/bin/sleep")));
    }
}
