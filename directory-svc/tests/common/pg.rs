//! A private PostgreSQL cluster for a test that stops and starts its database: stopping the shared
//! throwaway cluster would break every other test running at the same time.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

pub struct PrivatePostgres {
    _dir: TempDir,
    data: PathBuf,
    log: PathBuf,
    options: String,
    pg_bin: PathBuf,
    run_as: Vec<String>,
    pub url: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl PrivatePostgres {
    /// Uses the server binaries and the run-as prefix that scripts/with-postgres exports.
    pub fn start() -> Self {
        let pg_bin = PathBuf::from(std::env::var("PG_BIN").unwrap_or_else(|_| {
            panic!("PG_BIN is not set: run under scripts/with-postgres (scripts/with-postgres -- cargo test -p atdirectory)")
        }));
        let run_as: Vec<String> = std::env::var("PG_CTL_AS")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        std::fs::create_dir_all(&data).expect("mkdir");
        std::fs::create_dir_all(&sock).expect("mkdir");
        let port = free_port();
        let mut pg = Self {
            data: data.clone(),
            log: dir.path().join("postgres.log"),
            options: format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c max_connections=50",
                sock.display()
            ),
            pg_bin,
            run_as,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            _dir: dir,
        };
        if !pg.run_as.is_empty() {
            // The server refuses to run as root; the prefix runs it as the `postgres` user.
            pg.check(Command::new("chmod").arg("755").arg(pg._dir.path()));
            pg.check(
                Command::new("chown")
                    .arg("-R")
                    .arg("postgres:")
                    .arg(pg._dir.path()),
            );
        }
        let initdb = pg.tool("initdb");
        pg.check(pg.command(&initdb).args(["-D"]).arg(&pg.data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ]));
        pg.up();
        pg
    }

    fn tool(&self, name: &str) -> PathBuf {
        self.pg_bin.join(name)
    }

    fn command(&self, program: &Path) -> Command {
        match self.run_as.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    fn check(&self, command: &mut Command) {
        let out = command.output().expect("run a PostgreSQL tool");
        assert!(
            out.status.success(),
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn up(&mut self) {
        let pg_ctl = self.tool("pg_ctl");
        let mut c = self.command(&pg_ctl);
        c.arg("-D").arg(&self.data).arg("-l").arg(&self.log).args([
            "-w",
            "-t",
            "60",
            "-o",
            &self.options,
            "start",
        ]);
        self.check(&mut c);
    }

    pub fn down(&mut self) {
        let pg_ctl = self.tool("pg_ctl");
        let mut c = self.command(&pg_ctl);
        c.arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"]);
        self.check(&mut c);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let pg_ctl = self.tool("pg_ctl");
        let _ = self
            .command(&pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
