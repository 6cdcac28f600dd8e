//! A PostgreSQL primary and a streaming-replication standby on loopback ports, as the `postgres`
//! user when run as root: started, stopped hard, restarted, and the standby promoted.
//!
//! Replication is synchronous (`synchronous_standby_names = '*'`, `synchronous_commit = on`) once
//! the standby streams, so a commit the primary acknowledged is on the standby's disk: that is what
//! lets the failover keep every acknowledged registration. The setting is made with `ALTER SYSTEM`
//! after the base backup, so the promoted standby does not inherit it and does not wait for a
//! standby it no longer has.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::process::Command;

use super::super::error::ReliabilityError;
use crate::local::free_port;
use crate::local::postgres::pg_bin;

/// One PostgreSQL server of the pair.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: &'static str,
    pub port: u16,
    data: PathBuf,
    sock: PathBuf,
    log: PathBuf,
    /// `-c` settings given on every start (never copied by a base backup).
    settings: Vec<String>,
}

impl Node {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

pub struct PgPair {
    bin: PathBuf,
    as_postgres: bool,
    pub primary: Node,
    pub standby: Node,
    /// Removed on drop, after both servers are stopped.
    _dir: tempfile::TempDir,
}

fn setup(what: &str) -> impl FnOnce(String) -> ReliabilityError + '_ {
    move |message| ReliabilityError::Setup(format!("{what}: {message}"))
}

impl PgPair {
    /// initdb, start the primary, `pg_basebackup -R` the standby, start it, wait until it streams,
    /// then make replication synchronous.
    pub async fn start() -> Result<PgPair, ReliabilityError> {
        let bin = pg_bin().map_err(|e| ReliabilityError::Setup(e.to_string()))?;
        // Under /tmp (traversable by `postgres`), not under the run's root-only scratch directory.
        let dir = tempfile::Builder::new()
            .prefix("atfleet-outage-pg-")
            .tempdir()
            .map_err(ReliabilityError::io(std::env::temp_dir()))?;
        let as_postgres = rustix::process::geteuid().is_root();
        let node = |name: &'static str, extra: &[&str]| -> Result<Node, ReliabilityError> {
            let sock = dir.path().join(format!("{name}-sock"));
            std::fs::create_dir_all(&sock).map_err(ReliabilityError::io(&sock))?;
            let mut settings: Vec<String> = [
                "listen_addresses=127.0.0.1",
                // The servers stop hard but the machine never does: the page cache keeps what
                // fsync would, and the run is not slowed by a shared disk.
                "fsync=off",
                "wal_level=replica",
                "max_wal_senders=4",
                "wal_keep_size=256MB",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            settings.extend(extra.iter().map(|s| s.to_string()));
            Ok(Node {
                name,
                port: free_port().map_err(|e| ReliabilityError::Setup(e.to_string()))?,
                data: dir.path().join(format!("{name}-data")),
                sock,
                log: dir.path().join(format!("{name}.log")),
                settings,
            })
        };
        let primary = node("primary", &[])?;
        // The standby retries its primary every half second rather than every 5 s, so commits
        // waiting for it after a primary restart resume promptly.
        let standby = node("standby", &["wal_retrieve_retry_interval=500ms"])?;
        if as_postgres {
            run(
                Command::new("chown")
                    .args(["-R", "postgres:"])
                    .arg(dir.path()),
                "chown postgres",
            )
            .await?;
        }
        let pair = PgPair {
            bin,
            as_postgres,
            primary,
            standby,
            _dir: dir,
        };
        run(
            pair.tool("initdb").arg("-D").arg(&pair.primary.data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]),
            "initdb",
        )
        .await?;
        pair.start_node(&pair.primary).await?;
        run(
            pair.tool("pg_basebackup")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-X", "stream", "-R"])
                .args(["-p", &pair.primary.port.to_string()])
                .arg("-D")
                .arg(&pair.standby.data),
            "pg_basebackup",
        )
        .await?;
        pair.start_node(&pair.standby).await?;
        pair.wait_streaming().await?;
        pair.sql(
            &pair.primary,
            "ALTER SYSTEM SET synchronous_standby_names = '*'",
        )
        .await?;
        pair.sql(&pair.primary, "SELECT pg_reload_conf()").await?;
        Ok(pair)
    }

    fn tool(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// `pg_ctl start -w` with the node's port, socket directory and settings.
    pub async fn start_node(&self, node: &Node) -> Result<(), ReliabilityError> {
        let mut options = format!("-p {} -k {}", node.port, node.sock.display());
        for s in &node.settings {
            options.push_str(" -c ");
            options.push_str(s);
        }
        run(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(&node.data)
                .arg("-l")
                .arg(&node.log)
                .args(["-w", "-t", "120", "-o", &options, "start"]),
            &format!("pg_ctl start ({})", node.name),
        )
        .await
    }

    /// `pg_ctl stop -m immediate`: every backend killed at once, no checkpoint, as a crash would.
    pub async fn stop_hard(&self, node: &Node) -> Result<(), ReliabilityError> {
        run(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(&node.data)
                .args(["-m", "immediate", "-w", "stop"]),
            &format!("pg_ctl stop ({})", node.name),
        )
        .await
    }

    /// `pg_ctl promote -w`: the standby becomes a primary.
    pub async fn promote(&self, node: &Node) -> Result<(), ReliabilityError> {
        run(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(&node.data)
                .args(["-w", "-t", "120", "promote"]),
            &format!("pg_ctl promote ({})", node.name),
        )
        .await
    }

    /// Runs one statement with psql in the `postgres` database of `node`.
    pub async fn sql(&self, node: &Node, statement: &str) -> Result<String, ReliabilityError> {
        self.sql_in(node, "postgres", statement).await
    }

    /// Runs one statement with psql in `database` on `node` (directly, not through the
    /// forwarder); returns its unaligned output, one row a line, fields separated by `|`.
    pub async fn sql_in(
        &self,
        node: &Node,
        database: &str,
        statement: &str,
    ) -> Result<String, ReliabilityError> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", database])
            .args(["-p", &node.port.to_string()])
            .args(["-v", "ON_ERROR_STOP=1", "-Atc", statement])
            .output()
            .await
            .map_err(|e| setup("psql")(e.to_string()))?;
        if !out.status.success() {
            return Err(setup("psql")(format!(
                "{statement}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Until the primary reports a streaming standby (`pg_stat_replication`).
    async fn wait_streaming(&self) -> Result<(), ReliabilityError> {
        for _ in 0..600 {
            let state = self
                .sql(
                    &self.primary,
                    "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
                )
                .await?;
            if state.trim() != "0" {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ReliabilityError::Timeout(
            "the standby to stream from the primary".into(),
        ))
    }
}

impl Drop for PgPair {
    fn drop(&mut self) {
        for node in [&self.primary, &self.standby] {
            let path = self.bin.join("pg_ctl");
            let mut cmd = if self.as_postgres {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(path);
                c
            } else {
                std::process::Command::new(path)
            };
            let _ = cmd
                .arg("-D")
                .arg(&node.data)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

async fn run(cmd: &mut Command, what: &str) -> Result<(), ReliabilityError> {
    let out = cmd.output().await.map_err(|e| setup(what)(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(setup(what)(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }
}
