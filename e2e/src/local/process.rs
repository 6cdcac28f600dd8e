//! Child processes of the local cluster: output to a log file, SIGTERM on stop, killed on drop.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::LocalError;

pub struct Proc {
    pub name: String,
    pub log: PathBuf,
    child: tokio::process::Child,
}

impl Proc {
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, String)],
        logs: &Path,
    ) -> Result<Self, LocalError> {
        let log = logs.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).map_err(LocalError::io(&log))?;
        let err = out.try_clone().map_err(LocalError::io(&log))?;
        let child = tokio::process::Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            // Its own process group: a terminal's Ctrl-C reaches only our process, which then
            // stops the children in order (etcd must outlive the apiserver's clients).
            .process_group(0)
            .spawn()
            .map_err(LocalError::io(program))?;
        Ok(Self {
            name: name.into(),
            log,
            child,
        })
    }

    /// Fails with the log's tail when the process has already exited.
    pub fn check_running(&mut self) -> Result<(), LocalError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(LocalError::Exited {
                name: self.name.clone(),
                status: status.to_string(),
                log_tail: tail(&self.log),
            }),
            Err(e) => Err(LocalError::io(&self.log)(e)),
        }
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(mut self, grace: Duration) {
        let pid = self
            .child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            if rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_ok()
                && tokio::time::timeout(grace, self.child.wait()).await.is_ok()
            {
                return;
            }
        }
        let _ = self.child.kill().await;
    }
}

/// The last lines of a log file, for error messages.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
