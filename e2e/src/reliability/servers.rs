//! The processes the crash and hostile sections run against: the atDirectory on a PostgreSQL
//! (the server `DATABASE_URL` names, or a throwaway cluster when there is none, as under `make
//! reliability`), and atServers on a fixed address, so a restarted server is where the directory
//! and its peers already know it to be.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use at_protocol::client::AtConnection;
use at_protocol::AtSign;
use tokio::process::Child;

use super::context::Ctx;
use super::error::ReliabilityError;
use crate::bench::directory::{self, Directory, RateLimit};
use crate::bench::process::{self, Spawned};
use crate::local::postgres::Postgres;

/// The CRAM secret every atServer of these sections is seeded with.
pub const SECRET: &str = "7c1e9a3f5b7d9e1c3a5f7b9d1e3c5a7f9b1d3e5c7a9f1b3d5e7c9a1f3b5d7e9c7c1e9a3f5b7d9e1c3a5f7b9d1e3c5a7f9b1d3e5c7a9f1b3d5e7c9a1f3b5d7e9c";

/// A running atDirectory with the database it runs on.
pub struct DirectoryRun {
    pub directory: Directory,
    /// The throwaway cluster, stopped on drop; `None` on `DATABASE_URL`'s server.
    _postgres: Option<Postgres>,
}

impl DirectoryRun {
    /// A fresh database on `DATABASE_URL`'s server, or on a throwaway cluster in the scratch
    /// directory; then the atDirectory on it, with `extra` flags.
    pub async fn start(ctx: &Ctx, name: &str, extra: &[&str]) -> Result<Self, ReliabilityError> {
        let (base, postgres) = match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => (url, None),
            _ => {
                let dir = ctx.dir(&format!("{name}-postgres"))?;
                // initdb and pg_ctl block for seconds: keep them off the runtime's workers.
                let pg = tokio::task::spawn_blocking(move || Postgres::start_cluster(&dir))
                    .await
                    .map_err(|e| ReliabilityError::Setup(format!("starting PostgreSQL: {e}")))?
                    .map_err(|e| ReliabilityError::Setup(format!("starting PostgreSQL: {e}")))?;
                (pg.url.clone(), Some(pg))
            }
        };
        let db_url = directory::fresh_database(&base).await?;
        let token = directory::write_token(&ctx.dir(name)?)?;
        let directory = spawn_directory(ctx, &db_url, &token, extra).await?;
        Ok(DirectoryRun {
            directory,
            _postgres: postgres,
        })
    }

    /// Publishes `atsign` at `addr`.
    pub async fn register(&self, atsign: &str, addr: SocketAddr) -> Result<(), ReliabilityError> {
        directory::register_one(
            self.directory.http_addr,
            atsign,
            &addr.ip().to_string(),
            addr.port(),
        )
        .await?;
        Ok(())
    }

    pub async fn stop(self) {
        process::stop(self.directory.child, Duration::from_secs(10)).await;
    }
}

/// Migrates `db_url` and starts `atdirectory` on loopback ports with its shipped abuse limits
/// (the bench's starter lifts the rate limit), plus `extra` flags.
async fn spawn_directory(
    ctx: &Ctx,
    db_url: &str,
    token: &Path,
    extra: &[&str],
) -> Result<Directory, ReliabilityError> {
    Ok(Directory::spawn_with(
        &ctx.bin("atdirectory"),
        &ctx.pki,
        token,
        db_url,
        &ctx.log,
        RateLimit::Shipped,
        extra,
    )
    .await?)
}

/// How to start one atServer; every start of the same spec listens on the same address.
pub struct ServerSpec {
    pub atsign: String,
    /// Where it listens (a fixed port: peers and the directory keep knowing it across restarts).
    pub addr: SocketAddr,
    /// Certificate and key for exactly `addr`'s IP, so peers' SAN checks pass.
    pub cert: (PathBuf, PathBuf),
    pub data_dir: PathBuf,
    /// The atDirectory's root address (with the run's CA as `--ca-bundle`).
    pub root_server: Option<SocketAddr>,
    /// More flags (limits, delivery tunables).
    pub extra: Vec<String>,
}

impl ServerSpec {
    /// A spec for `atsign` on `ip` with a free port, its own certificate and data directory.
    pub fn new(ctx: &Ctx, atsign: &str, ip: &str) -> Result<ServerSpec, ReliabilityError> {
        let name = atsign.trim_start_matches('@');
        let port = std::net::TcpListener::bind((ip, 0))
            .and_then(|l| l.local_addr())
            .map_err(ReliabilityError::io(ip))?
            .port();
        let addr: SocketAddr = format!("{ip}:{port}")
            .parse()
            .map_err(|e| ReliabilityError::Setup(format!("{ip}: {e}")))?;
        Ok(ServerSpec {
            atsign: atsign.into(),
            addr,
            cert: ctx.pki.leaf(&format!("{name}-{ip}"), &[ip])?,
            data_dir: ctx.dir(&format!("{name}-data"))?,
            root_server: None,
            extra: Vec::new(),
        })
    }
}

/// A running atServer.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub atsign: AtSign,
    /// From spawn to the first greeting on a new connection.
    pub to_ready: Duration,
}

impl Server {
    /// Starts `spec` and waits until a new connection gets its greeting.
    pub async fn start(ctx: &Ctx, spec: &ServerSpec) -> Result<Server, ReliabilityError> {
        let atsign = AtSign::parse(&spec.atsign)
            .map_err(|e| ReliabilityError::Setup(format!("{}: {e}", spec.atsign)))?;
        let secret = spec.data_dir.with_extension("cram");
        if !secret.exists() {
            std::fs::write(&secret, SECRET).map_err(ReliabilityError::io(&secret))?;
        }
        let mut cmd = tokio::process::Command::new(ctx.bin("atserver"));
        cmd.args(["--atsign", &spec.atsign])
            .args(["--listen", &spec.addr.to_string()])
            .args(["--http-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&spec.data_dir)
            .arg("--tls-cert")
            .arg(&spec.cert.0)
            .arg("--tls-key")
            .arg(&spec.cert.1)
            .arg("--cram-secret-file")
            .arg(&secret)
            .args(&spec.extra)
            .env("ATSERVER_LOG", "warn");
        if let Some(root) = spec.root_server {
            cmd.args(["--root-server", &root.to_string()])
                .arg("--ca-bundle")
                .arg(&ctx.pki.ca_path);
        }
        let started = Instant::now();
        let mut p = Spawned::start(cmd, "atserver", &ctx.log)?;
        p.wait_for(Duration::from_secs(60), |l| {
            l.starts_with("listening tls=").then_some(())
        })
        .await?;
        drop(connect(ctx, spec.addr).await?);
        let to_ready = started.elapsed();
        Ok(Server {
            child: p.drain_stdout(),
            addr: spec.addr,
            atsign,
            to_ready,
        })
    }

    /// A new owner connection (CRAM).
    pub async fn owner(&self, ctx: &Ctx) -> Result<AtConnection, ReliabilityError> {
        let mut c = connect(ctx, self.addr).await?;
        c.authenticate_cram(&self.atsign, SECRET).await?;
        Ok(c)
    }

    /// A new unauthenticated connection.
    pub async fn anonymous(&self, ctx: &Ctx) -> Result<AtConnection, ReliabilityError> {
        connect(ctx, self.addr).await
    }

    /// SIGKILL, then reaps the process.
    pub async fn kill(mut self) -> Result<(), ReliabilityError> {
        self.child
            .kill()
            .await
            .map_err(|e| ReliabilityError::Setup(format!("killing atserver: {e}")))
    }

    pub async fn stop(self) {
        process::stop(self.child, Duration::from_secs(10)).await;
    }

    /// SIGSTOP or SIGCONT: a peer that accepts connections but answers nothing while stopped.
    pub fn pause(&self, paused: bool) -> Result<(), ReliabilityError> {
        let pid = self
            .child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| ReliabilityError::Setup("atserver has exited".into()))?;
        let signal = if paused {
            rustix::process::Signal::STOP
        } else {
            rustix::process::Signal::CONT
        };
        rustix::process::kill_process(pid, signal)
            .map_err(|e| ReliabilityError::Setup(format!("signalling atserver: {e}")))
    }
}

/// A TLS connection to `addr`, its IP also the name checked in the certificate (as peers do).
pub async fn connect(ctx: &Ctx, addr: SocketAddr) -> Result<AtConnection, ReliabilityError> {
    let config = ctx.pki.at_client()?;
    let host = addr.ip().to_string();
    Ok(AtConnection::connect_with_sni(&config, &host, addr.port(), &host).await?)
}

/// The store file of a data directory (what the crash section reads between a kill and the
/// next start).
pub fn store_file(data_dir: &Path) -> PathBuf {
    data_dir.join("atserver.sqlite3")
}
