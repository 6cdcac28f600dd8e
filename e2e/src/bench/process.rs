//! A benchmarked binary as its own process: started, awaited on its readiness line, measured
//! through `/proc`, stopped with SIGTERM.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use super::error::BenchError;

pub struct Spawned {
    pub child: Child,
    pub name: String,
    pub started: Instant,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Spawned {
    /// Starts `cmd` with stdout piped (read for readiness) and stderr appended to `log`.
    pub fn start(mut cmd: Command, name: &str, log: &Path) -> Result<Spawned, BenchError> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(BenchError::io(log))?;
        let started = Instant::now();
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError::Setup(format!("starting {name}: {e}")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::Setup(format!("{name}: no stdout")))?;
        Ok(Spawned {
            child,
            name: name.into(),
            started,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// Reads stdout until `pick` accepts a line; later lines are drained in the background so the
    /// child never blocks on a full pipe.
    pub async fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, BenchError> {
        let found = tokio::time::timeout(timeout, async {
            while let Ok(Some(line)) = self.lines.next_line().await {
                if let Some(v) = pick(&line) {
                    return Some(v);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(BenchError::Setup(format!(
                "{} exited before it was ready ({:?})",
                self.name,
                self.child.try_wait()
            ))),
            Err(_) => Err(BenchError::Timeout(format!(
                "{} to become ready",
                self.name
            ))),
        }
    }

    pub fn drain_stdout(self) -> Child {
        let mut lines = self.lines;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// Resident set now and its high-water mark, in KiB, from `/proc/<pid>/status`.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// SIGTERM, then up to `grace` for the exit; SIGKILL after that.
pub async fn stop(mut child: Child, grace: Duration) {
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        if rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_ok()
            && tokio::time::timeout(grace, child.wait()).await.is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}
