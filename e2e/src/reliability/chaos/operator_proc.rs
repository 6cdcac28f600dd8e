//! The operator process under chaos: SIGKILLed and started again by the harness, with exits the
//! harness did not cause counted apart.

use std::path::PathBuf;
use std::time::Duration;

use tokio::process::Child;

use crate::bench::directory::Directory;
use crate::bench::operator::operator_command;
use crate::bench::process::{self, Spawned};
use crate::reliability::error::ReliabilityError;

pub struct OperatorProc<'a> {
    bin: PathBuf,
    kubeconfig: PathBuf,
    directory: &'a Directory,
    log: PathBuf,
    /// The lease duration each process is started with.
    lease_seconds: u64,
    /// Processes started so far; each gets its own identity, as each pod of a Deployment would.
    started: u64,
    child: Option<Child>,
    /// SIGKILLs sent by the harness.
    pub kills: u64,
    /// Times the operator exited on its own (each is restarted and reported).
    pub exits: Vec<String>,
}

impl<'a> OperatorProc<'a> {
    pub fn start(
        bin: PathBuf,
        kubeconfig: PathBuf,
        directory: &'a Directory,
        log: PathBuf,
        lease_seconds: u64,
    ) -> Result<OperatorProc<'a>, ReliabilityError> {
        let mut p = OperatorProc {
            bin,
            kubeconfig,
            directory,
            log,
            lease_seconds,
            started: 0,
            child: None,
            kills: 0,
            exits: Vec::new(),
        };
        p.spawn()?;
        Ok(p)
    }

    fn spawn(&mut self) -> Result<(), ReliabilityError> {
        let mut cmd = operator_command(&self.bin, &self.kubeconfig, self.directory);
        // Leader election on, as the chart deploys it: a restarted operator first waits out the
        // lease its killed predecessor could not release.
        self.started += 1;
        cmd.args(["--leader-election", "--lease-seconds"])
            .arg(self.lease_seconds.to_string())
            .arg("--identity")
            .arg(format!("atfleet-operator-chaos-{}", self.started));
        let spawned = Spawned::start(cmd, "atfleet-operator", &self.log)?;
        self.child = Some(spawned.drain_stdout());
        Ok(())
    }

    /// SIGKILL (no chance to release anything or finish a write), then a new process.
    pub async fn kill_and_restart(&mut self) -> Result<(), ReliabilityError> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
        self.kills += 1;
        self.spawn()
    }

    /// Restarts the operator if it exited by itself, and remembers how it exited.
    pub fn check_alive(&mut self) -> Result<(), ReliabilityError> {
        let exited = match self.child.as_mut() {
            Some(c) => c.try_wait().ok().flatten(),
            None => None,
        };
        if let Some(status) = exited {
            self.exits
                .push(format!("the operator exited by itself: {status}"));
            self.spawn()?;
        }
        Ok(())
    }

    pub async fn stop(mut self) {
        if let Some(child) = self.child.take() {
            process::stop(child, Duration::from_secs(10)).await;
        }
    }
}
