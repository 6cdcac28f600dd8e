//! atDirectory lookup rates: the release `atdirectory` (with PostgreSQL) on loopback, looked up
//! through the root protocol on persistent connections and with a new connection per lookup.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use at_protocol::client::{ClientConfig, RootClient};
use at_protocol::AtSign;
use futures::{StreamExt, TryStreamExt};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::context::Ctx;
use super::echo::{self, EchoConn, EchoFresh};
use super::error::BenchError;
use super::load::{self, Exchange};
use super::process::{self, Spawned};
use super::report::{Figure, Section, Target};
use super::stats::Summary;

const CONNECTIONS: usize = 16;
const TOKEN: &str = "atfleet-bench-directory-token";

/// Lookups through one reused connection (or, with `fresh`, a new client per lookup).
struct Lookups {
    root: RootClient,
    config: ClientConfig,
    addr: SocketAddr,
    atsigns: Arc<Vec<AtSign>>,
    fresh: bool,
}

impl Exchange for Lookups {
    async fn exchange(&mut self, i: usize) -> Result<(), BenchError> {
        let atsign = &self.atsigns[i % self.atsigns.len()];
        if self.fresh {
            self.root = root_client(&self.config, self.addr);
        }
        match self.root.lookup(atsign).await? {
            Some(_) => Ok(()),
            None => Err(BenchError::Setup(format!("{atsign} is not registered"))),
        }
    }
}

fn root_client(config: &ClientConfig, addr: SocketAddr) -> RootClient {
    RootClient::new(config.clone(), addr.ip().to_string(), addr.port()).with_sni("localhost")
}

pub async fn run(ctx: &Ctx) -> Result<Vec<Section>, BenchError> {
    let reps = ctx.reps();
    let registered = ctx.mode.pick(1000, 10);
    let persistent = ctx.mode.pick(1000, 5);
    let fresh = ctx.mode.pick(50, 2);
    let mut s = Section::new(
        "directory",
        "atDirectory lookups",
        format!(
            "The release `atdirectory` process on loopback with a fresh PostgreSQL database, {registered} \
             Atsigns registered through its HTTP API, per-source rate limit raised out of the way. Timed: \
             root-protocol lookups (`<atsign>` → `@host:port`, via at_protocol's RootClient) cycling over \
             the registered Atsigns from {CONNECTIONS} concurrent clients, {persistent} per client and \
             repetition on persistent connections, {fresh} per client and repetition with a new TLS \
             connection per lookup; rate = lookups / wall time. Warm-up: one pass of the same size before \
             timing (it also fills the directory's cache, as in steady state). Baseline: the bare rustls \
             echo server driven the same way (persistent, and new connection per line). {reps} repetitions."
        ),
    );
    let Some(url) = ctx.database_url.as_deref() else {
        s.not_measured(
            "atDirectory lookups per second",
            "no PostgreSQL (DATABASE_URL unset; `make bench` runs under scripts/with-postgres)",
        );
        return Ok(vec![s]);
    };
    let dir = Directory::start(ctx, url).await?;
    let (child, root_addr, http_addr) = (dir.child, dir.root_addr, dir.http_addr);
    let atsigns = register(http_addr, registered).await?;
    let config = ctx.pki.at_client()?;
    let clients = |fresh: bool| -> Vec<Lookups> {
        (0..CONNECTIONS)
            .map(|_| Lookups {
                root: root_client(&config, root_addr),
                config: config.clone(),
                addr: root_addr,
                atsigns: atsigns.clone(),
                fresh,
            })
            .collect()
    };
    let (ours_p, _) = load::repeat(clients(false), persistent, persistent, reps).await?;
    let (ours_f, _) = load::repeat(clients(true), fresh, fresh, reps).await?;
    process::stop(child, Duration::from_secs(10)).await;

    let (echo_child, echo_addr) = echo::spawn(ctx).await?;
    let tls = ctx.pki.rustls_client()?;
    let line = "b00001";
    let echoes: Vec<EchoConn> = futures::stream::iter(0..CONNECTIONS)
        .then(|_| EchoConn::connect(echo_addr, &tls, line))
        .try_collect()
        .await?;
    let (base_p, _) = load::repeat(echoes, persistent, persistent, reps).await?;
    let fresh_echoes = (0..CONNECTIONS)
        .map(|_| EchoFresh {
            addr: echo_addr,
            tls: tls.clone(),
            line: line.into(),
        })
        .collect();
    let (base_f, _) = load::repeat(fresh_echoes, fresh, fresh, reps).await?;
    process::stop(echo_child, Duration::from_secs(5)).await;

    let sum = |v: &[f64]| Summary::of(v).ok_or_else(|| BenchError::Setup("no repetitions".into()));
    s.figures.push(
        Figure::new(
            &format!("atDirectory lookups, {CONNECTIONS} persistent connections"),
            "lookups/s",
            sum(&ours_p)?,
            Target::RatioAtLeast { ratio: 0.5 },
        )
        .with_baseline("rustls echo, persistent", Summary::of(&base_p)),
    );
    s.figures.push(
        Figure::new(
            "atDirectory lookups, new connection per lookup",
            "lookups/s",
            sum(&ours_f)?,
            Target::RatioAtLeast { ratio: 0.5 },
        )
        .with_baseline("rustls echo, new connection per line", Summary::of(&base_f)),
    );
    Ok(vec![s])
}

/// A running `atdirectory` with its own fresh database.
/// Whether a started atDirectory keeps its per-source lookup rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    /// Out of the way: the load comes from one address.
    Lifted,
    /// As shipped: what hostile clients meet.
    Shipped,
}

pub struct Directory {
    pub child: tokio::process::Child,
    pub root_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub token_file: std::path::PathBuf,
}

impl Directory {
    /// Creates a database on the server of `url`, migrates it and starts the directory with the
    /// per-source rate limit out of the way.
    pub async fn start(ctx: &Ctx, url: &str) -> Result<Directory, BenchError> {
        let db_url = fresh_database(url).await?;
        let token = write_token(ctx.work.path())?;
        Directory::spawn(
            &ctx.bin("atdirectory"),
            &ctx.pki,
            &token,
            &db_url,
            &ctx.log,
            &[],
        )
        .await
    }

    /// Migrates `db_url` and starts `atdirectory` on loopback ports with the per-source rate limit
    /// out of the way, plus `extra` flags; returns once it printed its addresses.
    pub async fn spawn(
        bin: &std::path::Path,
        pki: &super::pki::Pki,
        token_file: &std::path::Path,
        db_url: &str,
        log: &std::path::Path,
        extra: &[&str],
    ) -> Result<Directory, BenchError> {
        Directory::spawn_with(bin, pki, token_file, db_url, log, RateLimit::Lifted, extra).await
    }

    /// [`Directory::spawn`] with the choice of rate limit: a benchmark lifts it, an abuse test
    /// keeps the shipped one.
    pub async fn spawn_with(
        bin: &std::path::Path,
        pki: &super::pki::Pki,
        token_file: &std::path::Path,
        db_url: &str,
        log: &std::path::Path,
        rate_limit: RateLimit,
        extra: &[&str],
    ) -> Result<Directory, BenchError> {
        let migrate = tokio::process::Command::new(bin)
            .args(["--database-url", db_url, "migrate"])
            .output()
            .await
            .map_err(|e| BenchError::Setup(format!("atdirectory migrate: {e}")))?;
        if !migrate.status.success() {
            return Err(BenchError::Setup(format!(
                "atdirectory migrate: {}",
                String::from_utf8_lossy(&migrate.stderr)
            )));
        }
        let mut cmd = tokio::process::Command::new(bin);
        cmd.args([
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .arg("--tls-cert")
        .arg(&pki.cert)
        .arg("--tls-key")
        .arg(&pki.key)
        .args(["--database-url", db_url])
        .arg("--api-token-file")
        .arg(token_file)
        .args(match rate_limit {
            RateLimit::Lifted => &[
                "--rate-limit-per-second",
                "1000000",
                "--rate-limit-burst",
                "1000000",
            ][..],
            RateLimit::Shipped => &[][..],
        })
        .args(extra)
        .env("RUST_LOG", "info")
        .env_remove("DATABASE_URL");
        let mut p = Spawned::start(cmd, "atdirectory", log)?;
        let (root_addr, http_addr) = p
            .wait_for(Duration::from_secs(60), |l| {
                let event: serde_json::Value = serde_json::from_str(l).ok()?;
                let addr = |f: &str| event.get(f)?.as_str()?.parse::<SocketAddr>().ok();
                Some((addr("root_addr")?, addr("http_addr")?))
            })
            .await?;
        Ok(Directory {
            child: p.drain_stdout(),
            root_addr,
            http_addr,
            token_file: token_file.to_path_buf(),
        })
    }
}

/// The registration API's bearer token as a file in `dir` (what `register_one` sends).
pub fn write_token(dir: &std::path::Path) -> Result<std::path::PathBuf, BenchError> {
    let token = dir.join("directory-token");
    std::fs::write(&token, TOKEN).map_err(BenchError::io(&token))?;
    Ok(token)
}

/// A new database on the same server as `url`, so runs never see each other's rows.
pub async fn fresh_database(url: &str) -> Result<String, BenchError> {
    let name = format!("atfleet_bench_{}", uuid::Uuid::new_v4().simple());
    let out = tokio::process::Command::new("psql")
        .args([
            url,
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            &format!("CREATE DATABASE {name}"),
        ])
        .output()
        .await
        .map_err(|e| BenchError::Setup(format!("psql: {e}")))?;
    if !out.status.success() {
        return Err(BenchError::Setup(format!(
            "creating the bench database: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let server = base
        .rsplit_once('/')
        .map(|(s, _)| s)
        .filter(|s| s.ends_with(|c: char| c != '/'))
        .ok_or_else(|| BenchError::Setup(format!("DATABASE_URL without a database name: {url}")))?;
    Ok(format!("{server}/{name}{query}"))
}

/// Registers `n` Atsigns (`@b00000`…) through the HTTP API, 16 at a time.
async fn register(http: SocketAddr, n: usize) -> Result<Arc<Vec<AtSign>>, BenchError> {
    let names: Vec<String> = (0..n).map(|i| format!("b{i:05}")).collect();
    futures::stream::iter(names.iter())
        .map(|name| register_one(http, name, "127.0.0.1", 6464))
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    let atsigns = names
        .iter()
        .map(|n| AtSign::parse(&format!("@{n}")).map_err(|e| BenchError::Setup(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(atsigns))
}

/// `PUT /v1/atsigns/<name>` pointing at `host:port`.
pub async fn register_one(
    http: SocketAddr,
    name: &str,
    host: &str,
    port: u16,
) -> Result<(), BenchError> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let body = serde_json::json!({"host": host, "port": port, "owner": "bench"});
    let name = name.trim_start_matches('@');
    let req = hyper::Request::put(format!("http://{http}/v1/atsigns/{name}"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| BenchError::Setup(format!("registration request: {e}")))?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| BenchError::Setup(format!("registering {name}: {e}")))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(BenchError::Setup(format!(
            "registering {name}: HTTP {}",
            resp.status()
        )))
    }
}

/// Every registered atSign (`@name`), through `GET /v1/atsigns` page by page.
pub async fn registered(http: SocketAddr) -> Result<Vec<String>, BenchError> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut found = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let query = match &after {
            Some(a) => format!("limit=1000&after={}", a.replace('@', "%40")),
            None => "limit=1000".into(),
        };
        let req = hyper::Request::get(format!("http://{http}/v1/atsigns?{query}"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Full::new(Bytes::new()))
            .map_err(|e| BenchError::Setup(format!("listing request: {e}")))?;
        let resp = client
            .request(req)
            .await
            .map_err(|e| BenchError::Setup(format!("listing registrations: {e}")))?;
        let status = resp.status();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .map_err(|e| BenchError::Setup(format!("listing registrations: {e}")))?
            .to_bytes();
        if !status.is_success() {
            return Err(BenchError::Setup(format!(
                "listing registrations: HTTP {status}"
            )));
        }
        let page: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| BenchError::Setup(format!("listing registrations: {e}")))?;
        found.extend(
            page["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["atsign"].as_str().map(str::to_owned)),
        );
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return Ok(found),
        }
    }
}
