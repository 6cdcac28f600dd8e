//! Child processes with their output in a log file: SIGTERM on stop, killed if dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::ClusterError;

pub struct Proc {
    pub name: String,
    pub log: PathBuf,
    child: tokio::process::Child,
}

impl Proc {
    /// Starts `program` with `args` and `env`, stdout and stderr to `logs/<name>.log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, String)],
        logs: &Path,
    ) -> Result<Self, ClusterError> {
        let log = logs.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).map_err(ClusterError::io(&log))?;
        let err = out.try_clone().map_err(ClusterError::io(&log))?;
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
            .map_err(ClusterError::io(program))?;
        Ok(Self {
            name: name.into(),
            log,
            child,
        })
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Fails with the log's tail when the process has exited.
    pub fn check_running(&mut self) -> Result<(), ClusterError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(ClusterError::Exited {
                name: self.name.clone(),
                status: status.to_string(),
                log: self.log.clone(),
                log_tail: tail(&self.log, 15),
            }),
            Err(e) => Err(ClusterError::io(&self.log)(e)),
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

/// The last `lines` lines of a log file, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
