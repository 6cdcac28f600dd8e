//! Keeping pod logs after their pods go: the node agent removes a pod's directory with it.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Hard-links every pod log under `pods` (`<ns>/<pod>-<uid>/<container>.log`) into `keep` once a
/// second: the link keeps the file (and what the process still writes to it) when the node
/// agent removes the pod's directory.
pub(super) async fn keep_pod_logs(pods: PathBuf, keep: PathBuf) {
    loop {
        link_pod_logs(&pods, &keep);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub(super) fn link_pod_logs(pods: &Path, keep: &Path) {
    let dirs = |p: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    for ns in dirs(pods) {
        for pod in dirs(&ns) {
            for file in dirs(&pod) {
                if file.extension().is_none_or(|e| e != "log") || !file.is_file() {
                    continue;
                }
                let (Some(n), Some(p), Some(f)) =
                    (ns.file_name(), pod.file_name(), file.file_name())
                else {
                    continue;
                };
                let target = keep.join(n).join(p).join(f);
                if target.exists() {
                    continue;
                }
                if let Some(parent) = target.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                if std::fs::hard_link(&file, &target).is_err() {
                    let _ = std::fs::copy(&file, &target);
                }
            }
        }
    }
}
