//! A database for the atDirectory: a fresh one in the server `DATABASE_URL` names, or a
//! throwaway PostgreSQL cluster started from the installed binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::error::LocalError;
use super::net::free_port;

pub struct Postgres {
    pub url: String,
    cluster: Option<Cluster>,
}

struct Cluster {
    pg_ctl: PathBuf,
    data: PathBuf,
    as_postgres: bool,
}

impl Postgres {
    /// A new database in the server at `base_url` (created with `psql`).
    pub fn database_in(base_url: &str) -> Result<Self, LocalError> {
        let name = format!("atfleet_local_{}", uuid::Uuid::new_v4().simple());
        run(
            Command::new("psql")
                .arg(base_url)
                .args(["-v", "ON_ERROR_STOP=1", "-Atc"])
                .arg(format!("create database {name}")),
            "psql create database",
        )?;
        // postgres://user@host:port/db → same server, new database.
        let base = base_url
            .rsplit_once('/')
            .map(|(server, _)| server)
            .unwrap_or(base_url);
        Ok(Self {
            url: format!("{base}/{name}"),
            cluster: None,
        })
    }

    /// initdb + pg_ctl start in `dir` on a free loopback port (as the `postgres` user when root).
    pub fn start_cluster(dir: &Path) -> Result<Self, LocalError> {
        let bin = pg_bin()?;
        let data = dir.join("data");
        let sock = dir.join("sock");
        for d in [&data, &sock] {
            std::fs::create_dir_all(d).map_err(LocalError::io(d))?;
        }
        let as_postgres = rustix::process::geteuid().is_root();
        if as_postgres {
            run(
                Command::new("chown").args(["-R", "postgres:"]).arg(dir),
                "chown postgres",
            )?;
        }
        let cmd = |program: &str| {
            let path = bin.join(program);
            if as_postgres {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(path);
                c
            } else {
                Command::new(path)
            }
        };
        run(
            cmd("initdb").arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]),
            "initdb",
        )?;
        let port = free_port()?;
        let log = dir.join("postgres.log");
        run(
            cmd("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o"])
                .arg(format!(
                    "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off",
                    sock.display()
                ))
                .arg("start"),
            "pg_ctl start",
        )?;
        Ok(Self {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            cluster: Some(Cluster {
                pg_ctl: bin.join("pg_ctl"),
                data,
                as_postgres,
            }),
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(c) = &self.cluster {
            let mut cmd = if c.as_postgres {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", "postgres", "--"]).arg(&c.pg_ctl);
                cmd
            } else {
                Command::new(&c.pg_ctl)
            };
            let _ = cmd
                .arg("-D")
                .arg(&c.data)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<(), LocalError> {
    let out = cmd.output().map_err(|e| LocalError::Command {
        what: what.into(),
        message: e.to_string(),
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LocalError::Command {
            what: what.into(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// `$PG_BIN`, `pg_config --bindir`, the newest `/usr/lib/postgresql/*/bin`, or `initdb` on PATH.
pub(crate) fn pg_bin() -> Result<PathBuf, LocalError> {
    let has_initdb = |d: &Path| d.join("initdb").is_file();
    if let Some(d) = std::env::var_os("PG_BIN").map(PathBuf::from) {
        if has_initdb(&d) {
            return Ok(d);
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_initdb(&d) {
            return Ok(d);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| has_initdb(d))
        .collect();
    versions.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(d) = versions.pop() {
        return Ok(d);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|d| has_initdb(d))
        .ok_or_else(|| LocalError::Command {
            what: "finding PostgreSQL".into(),
            message: "no initdb found: install the PostgreSQL server binaries or set PG_BIN".into(),
        })
}
