//! The real `atdirectory` binary as a child process, for tests that need separate processes.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct DirectoryProcess {
    child: Child,
    pub root_addr: SocketAddr,
    pub http_addr: SocketAddr,
}

fn addr(event: &serde_json::Value, field: &str) -> Option<SocketAddr> {
    event.get(field)?.as_str()?.parse().ok()
}

impl DirectoryProcess {
    /// Starts the binary with JSON logs and waits for its "started" event, which carries the bound ports.
    pub async fn spawn(args: Vec<String>) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_atdirectory"))
            .args(args)
            .args(["--log-format", "json"])
            .env("RUST_LOG", "info")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn atdirectory");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let started = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if let (Some(root), Some(http)) =
                    (addr(&event, "root_addr"), addr(&event, "http_addr"))
                {
                    return Some((root, http));
                }
            }
            None
        })
        .await;
        let Ok(Some((root_addr, http_addr))) = started else {
            panic!("atdirectory did not start: {:?}", child.try_wait());
        };
        // Keep draining the logs so the child never blocks on a full pipe; echo them for failed tests.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                println!("[atdirectory {http_addr}] {line}");
            }
        });
        Self {
            child,
            root_addr,
            http_addr,
        }
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
