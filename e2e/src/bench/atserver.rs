//! atServer benchmarks: request rates (llookup, durable update), resident memory, start to ready.
//! The release `atserver` binary runs as its own process on loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use at_protocol::client::{AtConnection, MonitorConnection};
use at_protocol::AtSign;
use futures::{StreamExt, TryStreamExt};
use tokio::process::Child;

use super::context::Ctx;
use super::echo::{self, EchoConn};
use super::error::BenchError;
use super::load::{self, Amount, Exchange};
use super::process::{self, Spawned};
use super::report::{Figure, Section, Target};
use super::stats::{latency_percentiles, Summary};
use super::{plot, sqlite};

pub(crate) const ATSIGN: &str = "@alice";
/// The CRAM secret the benchmark server is seeded with.
const SECRET: &str = "0b5d7e1c9a3f46e8b2d4c6a8e0f1a3c5e7d9b1f3a5c7e9d1b3f5a7c9e1d3b5f70b5d7e1c9a3f46e8b2d4c6a8e0f1a3c5e7d9b1f3a5c7e9d1b3f5a7c9e1d3b5f7";
const REFERENCE_MEMORY: &str = "≈50 MB per instance";

/// A running atserver process.
pub struct AtServer {
    pub child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    /// From spawn to the first greeting read on a new connection.
    pub to_ready: Duration,
    pub atsign: String,
}

/// Who a started atserver is and where it listens.
pub struct Node {
    pub atsign: String,
    /// Loopback address to listen on; also its certificate's only name when `cert` is set.
    pub host: String,
    /// Certificate and key; the run's shared leaf when `None`.
    pub cert: Option<(PathBuf, PathBuf)>,
    /// `--root-server` and `--ca-bundle` for server-to-server traffic.
    pub root_server: Option<SocketAddr>,
}

impl Node {
    /// `@alice` on 127.0.0.1 with the shared certificate and no peers.
    pub fn alone() -> Node {
        Node {
            atsign: ATSIGN.into(),
            host: "127.0.0.1".into(),
            cert: None,
            root_server: None,
        }
    }
}

impl AtServer {
    pub async fn start(
        ctx: &Ctx,
        data_dir: &Path,
        max_connections: usize,
    ) -> Result<Self, BenchError> {
        Self::start_node(ctx, &Node::alone(), data_dir, max_connections).await
    }

    pub async fn start_node(
        ctx: &Ctx,
        node: &Node,
        data_dir: &Path,
        max_connections: usize,
    ) -> Result<Self, BenchError> {
        let secret = ctx.work.path().join("cram-secret");
        std::fs::write(&secret, SECRET).map_err(BenchError::io(&secret))?;
        let (cert, key) = node
            .cert
            .clone()
            .unwrap_or_else(|| (ctx.pki.cert.clone(), ctx.pki.key.clone()));
        let mut cmd = tokio::process::Command::new(ctx.bin("atserver"));
        cmd.args(["--atsign", &node.atsign])
            .args(["--listen", &format!("{}:0", node.host)])
            .args(["--http-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .arg("--cram-secret-file")
            .arg(&secret)
            .args(["--max-connections", &max_connections.to_string()])
            .env("ATSERVER_LOG", "warn");
        if let Some(root) = node.root_server {
            cmd.args(["--root-server", &root.to_string()])
                .arg("--ca-bundle")
                .arg(&ctx.pki.ca_path);
        }
        let mut p = Spawned::start(cmd, "atserver", &ctx.log)?;
        let addr: SocketAddr = p
            .wait_for(Duration::from_secs(60), |l| {
                let tls = l.strip_prefix("listening tls=")?;
                tls.split_whitespace().next()?.parse().ok()
            })
            .await?;
        // Ready means serving: the first greeting on a fresh connection.
        let conn = connect(ctx, addr).await?;
        let to_ready = p.started.elapsed();
        drop(conn);
        let pid = p
            .pid()
            .ok_or_else(|| BenchError::Setup("atserver exited".into()))?;
        Ok(AtServer {
            child: p.drain_stdout(),
            addr,
            pid,
            to_ready,
            atsign: node.atsign.clone(),
        })
    }

    pub async fn owner(&self, ctx: &Ctx) -> Result<AtConnection, BenchError> {
        let mut c = connect(ctx, self.addr).await?;
        let atsign = AtSign::parse(&self.atsign).map_err(|e| BenchError::Setup(e.to_string()))?;
        c.authenticate_cram(&atsign, SECRET).await?;
        Ok(c)
    }

    pub async fn stop(self) {
        process::stop(self.child, Duration::from_secs(10)).await;
    }
}

async fn connect(ctx: &Ctx, addr: SocketAddr) -> Result<AtConnection, BenchError> {
    let config = ctx.pki.at_client()?;
    // The address is also the name the certificate is checked against (as peers do).
    let host = addr.ip().to_string();
    Ok(AtConnection::connect_with_sni(&config, &host, addr.port(), &host).await?)
}

/// One owner connection sending the same command, expecting `data:`.
struct Command {
    conn: AtConnection,
    command: String,
}

impl Exchange for Command {
    async fn exchange(&mut self, _i: usize) -> Result<(), BenchError> {
        let reply = self.conn.send_raw(&self.command).await?;
        expect_data(&self.command, &reply)
    }
}

/// One owner connection writing a different public key each time.
struct Update {
    conn: AtConnection,
    /// Added to the exchange number to name the key, so a run can write any stretch of keys.
    first_key: usize,
}

impl Exchange for Update {
    async fn exchange(&mut self, i: usize) -> Result<(), BenchError> {
        let i = self.first_key + i;
        let command = format!("update:public:w{i}.bench{ATSIGN} value {i}");
        let reply = self.conn.send_raw(&command).await?;
        expect_data(&command, &reply)
    }
}

fn expect_data(command: &str, reply: &str) -> Result<(), BenchError> {
    if reply.starts_with("data:") {
        Ok(())
    } else {
        Err(BenchError::Setup(format!("`{command}` got {reply:?}")))
    }
}

pub(crate) fn ms(lat: &[f64]) -> String {
    let [p50, p99, p999] = latency_percentiles(lat);
    format!(
        "p50 {p50:.3} ms, p99 {p99:.3} ms, p99.9 {p999:.3} ms over {} exchanges",
        lat.len()
    )
}

/// llookup over 1 and 16 connections against the echo baseline; durable update against SQLite.
pub async fn throughput(ctx: &Ctx) -> Result<Vec<Section>, BenchError> {
    let reps = ctx.reps();
    // Request rates are taken over time windows, so a slow server lengthens no run.
    let warmup_ms = ctx.mode.pick(500, 20);
    let window_ms = ctx.mode.pick(2000, 50);
    let (warmup, window) = (
        Amount::Window(Duration::from_millis(warmup_ms as u64)),
        Amount::Window(Duration::from_millis(window_ms as u64)),
    );
    // Durable writes are counted, so both sides write the same rows.
    let write_warmup = ctx.mode.pick(20, 5);
    let writes = ctx.mode.pick(300, 5);
    let server = AtServer::start(ctx, &ctx.dir("throughput")?, 200).await?;
    let mut owner = server.owner(ctx).await?;
    owner
        .send_data(&format!("update:public:bench.key{ATSIGN} benchvalue"))
        .await?;
    let lookup = format!("llookup:public:bench.key{ATSIGN}");
    let owners = |n: usize| {
        futures::stream::iter(0..n)
            .then(|_| async {
                Ok::<_, BenchError>(Command {
                    conn: server.owner(ctx).await?,
                    command: lookup.clone(),
                })
            })
            .try_collect::<Vec<_>>()
    };
    let (ours1, lat1) = load::repeat_amount(owners(1).await?, warmup, window, reps).await?;
    let (ours16, _) = load::repeat_amount(owners(16).await?, warmup, window, reps).await?;
    let durable = durable_updates(ctx, owner, write_warmup, writes, reps).await;
    server.stop().await;
    let (ourw, latw, basew) = durable?;

    let (echo_child, echo_addr) = echo::spawn(ctx).await?;
    let tls = ctx.pki.rustls_client()?;
    let echoes = |n: usize| {
        futures::stream::iter(0..n)
            .then(|_| EchoConn::connect(echo_addr, &tls, &lookup))
            .try_collect::<Vec<_>>()
    };
    let (base1, blat1) = load::repeat_amount(echoes(1).await?, warmup, window, reps).await?;
    let (base16, _) = load::repeat_amount(echoes(16).await?, warmup, window, reps).await?;
    process::stop(echo_child, Duration::from_secs(5)).await;

    let mut s = Section::new(
        "throughput",
        "atServer request rates",
        format!(
            "One release `atserver` process on loopback, owner connections authenticated with CRAM. \
             Timed: `{lookup}` exchanges (send the line, read the whole reply) back to back for a \
             {window_ms} ms window per repetition, on 1 connection and on 16 concurrent connections; \
             rate = exchanges / wall time of the repetition (the last exchange may end after the \
             window; the wall time includes it). Warm-up: a {warmup_ms} ms window on the same \
             connections. Baseline: a bare rustls (ring) echo server in its own process answering the \
             same line, driven identically. Durable update: `update:public:w<i>.bench{ATSIGN} value <i>` \
             for i in 0..{writes} each repetition (1 connection; after the first repetition each \
             overwrites a key with new metadata) after {write_warmup} untimed writes, against a bare \
             SQLite upsert of the same keys and values with new metadata each time, one row per \
             committed transaction, on one database kept across repetitions, with the atserver \
             store's settings (journal_mode=WAL, synchronous=FULL, wal_autocheckpoint 10,000 pages, a \
             passive checkpoint from a second connection every 250 ms) in the same filesystem; within \
             each repetition the server and the baseline take turns of {DURABLE_TURN} writes, so both \
             meet the same disk load, and each side's rate is its writes / the sum of its turns' wall \
             times. {reps} repetitions each."
        ),
    );
    let sum = |v: &[f64]| Summary::of(v).ok_or_else(|| BenchError::Setup("no repetitions".into()));
    s.figures.push(
        Figure::new(
            "llookup rate, 1 TLS connection",
            "req/s",
            sum(&ours1)?,
            Target::RatioAtLeast { ratio: 0.5 },
        )
        .with_baseline("rustls echo, 1 connection", Summary::of(&base1)),
    );
    s.figures.push(
        Figure::new(
            "llookup rate, 16 TLS connections",
            "req/s",
            sum(&ours16)?,
            Target::RatioAtLeast { ratio: 0.5 },
        )
        .with_baseline("rustls echo, 16 connections", Summary::of(&base16)),
    );
    s.figures.push(
        Figure::new(
            "durable update rate, 1 connection",
            "writes/s",
            sum(&ourw)?,
            Target::RatioAtLeast { ratio: 0.5 },
        )
        .with_baseline("SQLite insert, WAL + synchronous=FULL", Summary::of(&basew)),
    );
    s.notes
        .push(format!("llookup latency, 1 connection: {}", ms(&lat1)));
    s.notes
        .push(format!("rustls echo latency, 1 connection: {}", ms(&blat1)));
    s.notes
        .push(format!("durable update latency: {}", ms(&latw)));
    let png = "llookup-latency.png";
    if plot::latency_histogram(&ctx.out_dir.join(png), &lat1, &blat1)? {
        s.plots.push(png.into());
        s.notes.push(format!(
            "{png}: per-exchange latency on 1 connection, x from 0 to the combined p99 in 60 equal bins, \
             y the share of each series' exchanges; red atserver llookup, blue rustls echo (no text: \
             plotters is built without fonts)"
        ));
    }
    Ok(vec![s])
}

/// Durable updates on `owner` and the SQLite baseline, each warmed up alike. Each timed repetition
/// writes keys `0..writes` on both sides in turns of [`DURABLE_TURN`] writes (server, baseline,
/// server, …), so both meet the same disk load: the cost of a sync on the shared machine swings
/// with other processes' writes, by more than ten times between whole sequential repetitions.
/// Returns our rates, our latencies and the baseline's rates.
async fn durable_updates(
    ctx: &Ctx,
    owner: AtConnection,
    warmup: usize,
    writes: usize,
    reps: usize,
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>), BenchError> {
    let dir = ctx.dir("sqlite-baseline")?;
    let mut baseline = blocking(move || {
        let mut b = sqlite::Baseline::open(&dir)?;
        for i in 0..warmup {
            b.write(i)?;
        }
        Ok(b)
    })
    .await?;
    let update = Update {
        conn: owner,
        first_key: 0,
    };
    let mut writer = load::drive(vec![update], warmup).await?.conns;
    let (mut ours, mut latencies, mut base) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        let (mut our_secs, mut base_secs) = (0.0, 0.0);
        for first in (0..writes).step_by(DURABLE_TURN) {
            let keys = first..(first + DURABLE_TURN).min(writes);
            for w in &mut writer {
                w.first_key = first;
            }
            let started = Instant::now();
            let run = load::drive(writer, keys.len()).await?;
            our_secs += started.elapsed().as_secs_f64();
            writer = run.conns;
            latencies.extend(run.latencies_ms);
            let (b, secs) = blocking(move || {
                let secs = baseline.write_timed(keys)?;
                Ok((baseline, secs))
            })
            .await?;
            baseline = b;
            base_secs += secs;
        }
        ours.push(rate(writes, our_secs));
        base.push(rate(writes, base_secs));
    }
    blocking(move || baseline.close()).await?;
    Ok((ours, latencies, base))
}

/// Writes per turn in [`durable_updates`].
const DURABLE_TURN: usize = 50;

fn rate(n: usize, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BenchError> + Send + 'static,
) -> Result<T, BenchError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BenchError::Setup(format!("sqlite baseline: {e}")))?
}

/// Resident memory of a fresh server, idle and holding many authenticated monitor connections.
pub async fn memory(ctx: &Ctx) -> Result<Vec<Section>, BenchError> {
    let reps = ctx.mode.pick(3, 1);
    let monitors = ctx.mode.pick(1000, 10);
    let (mut idle, mut idle_hwm, mut busy, mut busy_hwm) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for rep in 0..reps {
        let server =
            AtServer::start(ctx, &ctx.dir(&format!("memory{rep}"))?, monitors + 50).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (rss, hwm) = process::memory_kib(server.pid)
            .ok_or_else(|| BenchError::Setup("cannot read /proc/<pid>/status".into()))?;
        idle.push(rss as f64 / 1024.0);
        idle_hwm.push(hwm as f64 / 1024.0);
        let open: Vec<MonitorConnection> = futures::stream::iter(0..monitors)
            .map(|_| async {
                let conn = server.owner(ctx).await?;
                Ok::<_, BenchError>(conn.monitor("monitor").await?)
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (rss, hwm) = process::memory_kib(server.pid)
            .ok_or_else(|| BenchError::Setup("cannot read /proc/<pid>/status".into()))?;
        busy.push(rss as f64 / 1024.0);
        busy_hwm.push(hwm as f64 / 1024.0);
        drop(open);
        server.stop().await;
    }
    let mut s = Section::new(
        "memory",
        "atServer resident memory",
        format!(
            "VmRSS and VmHWM from /proc/<pid>/status of the release `atserver` process. Idle: a fresh \
             server (empty store) that has served one connection, read 0.5 s later. Busy: the same server \
             after {monitors} connections have each authenticated with CRAM and sent `monitor`, read 1 s \
             after the last one opened. {reps} repetitions, each with a fresh server."
        ),
    );
    let sum = |v: &[f64]| Summary::of(v).ok_or_else(|| BenchError::Setup("no repetitions".into()));
    s.figures.push(
        Figure::new(
            "resident memory, idle (VmRSS)",
            "MiB",
            sum(&idle)?,
            Target::AtMost { value: 10.0 },
        )
        .with_reference(REFERENCE_MEMORY),
    );
    s.figures.push(Figure::new(
        "resident memory high-water mark, idle (VmHWM)",
        "MiB",
        sum(&idle_hwm)?,
        Target::None,
    ));
    s.figures.push(
        Figure::new(
            &format!("resident memory, {monitors} open monitors (VmRSS)"),
            "MiB",
            sum(&busy)?,
            Target::None,
        )
        .with_reference(REFERENCE_MEMORY),
    );
    s.figures.push(Figure::new(
        &format!("resident memory high-water mark, {monitors} open monitors (VmHWM)"),
        "MiB",
        sum(&busy_hwm)?,
        Target::None,
    ));
    Ok(vec![s])
}

/// Start to ready with an empty store and with many keys.
pub async fn startup(ctx: &Ctx) -> Result<Vec<Section>, BenchError> {
    let reps = ctx.reps();
    let keys = ctx.mode.pick(100_000, 1_000);
    let mut empty = Vec::with_capacity(reps);
    for rep in 0..reps {
        let server = AtServer::start(ctx, &ctx.dir(&format!("startup-empty{rep}"))?, 200).await?;
        empty.push(server.to_ready.as_secs_f64() * 1000.0);
        server.stop().await;
    }
    let full_dir = ctx.dir("startup-full")?;
    seed(ctx, &full_dir, keys).await?;
    let mut full = Vec::with_capacity(reps);
    for _ in 0..reps {
        let server = AtServer::start(ctx, &full_dir, 200).await?;
        full.push(server.to_ready.as_secs_f64() * 1000.0);
        if full.len() == 1 {
            // The seeded keys must really be there, or the figure means nothing.
            let mut owner = server.owner(ctx).await?;
            let last = format!("llookup:public:k{}.bench{ATSIGN}", keys - 1);
            let value = owner.send_data(&last).await?;
            if value.trim() != format!("v{}", keys - 1) {
                return Err(BenchError::Setup(format!(
                    "seeded key read back as {value:?}"
                )));
            }
        }
        server.stop().await;
    }
    let mut s = Section::new(
        "startup",
        "atServer start to ready",
        format!(
            "Timed: from spawning the release `atserver` process to reading the `@` greeting on a new TLS \
             connection (its listener address is taken from its first stdout line). Empty store: a fresh \
             data directory each repetition. {keys} keys: a store seeded once (one key written through the \
             protocol, then {keys} records and commit entries copied from it in one SQLite transaction; the \
             last one is read back through `llookup`), started {reps} times. No warm-up beyond the page \
             cache of the binary. {reps} repetitions each; the server is stopped with SIGTERM between them."
        ),
    );
    let sum = |v: &[f64]| Summary::of(v).ok_or_else(|| BenchError::Setup("no repetitions".into()));
    s.figures.push(Figure::new(
        "start to ready, empty store",
        "ms",
        sum(&empty)?,
        Target::AtMost { value: 100.0 },
    ));
    s.figures.push(Figure::new(
        &format!("start to ready, {keys} keys"),
        "ms",
        sum(&full)?,
        Target::None,
    ));
    Ok(vec![s])
}

/// Writes one key through the server, then clones it `keys` times straight into its SQLite file.
async fn seed(ctx: &Ctx, dir: &Path, keys: usize) -> Result<(), BenchError> {
    let server = AtServer::start(ctx, dir, 200).await?;
    let mut owner = server.owner(ctx).await?;
    owner
        .send_data(&format!("update:public:seed.bench{ATSIGN} seed"))
        .await?;
    drop(owner);
    server.stop().await;
    let db = dir.join("atserver.sqlite3");
    tokio::task::spawn_blocking(move || -> Result<(), BenchError> {
        let mut conn = rusqlite::Connection::open(&db)?;
        let (meta, expires, available): (String, Option<i64>, Option<i64>) = conn.query_row(
            "SELECT meta, expires_at, available_at FROM records WHERE key LIKE 'public:seed.bench%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let (op, time): (String, i64) = conn.query_row(
            "SELECT op, time FROM commits WHERE key LIKE 'public:seed.bench%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let tx = conn.transaction()?;
        {
            let mut rec = tx.prepare(
                "INSERT INTO records (key, value, meta, expires_at, available_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut commit = tx.prepare("INSERT INTO commits (key, op, time) VALUES (?1, ?2, ?3)")?;
            for i in 0..keys {
                let key = format!("public:k{i}.bench{ATSIGN}");
                rec.execute(rusqlite::params![key, format!("v{i}"), meta, expires, available])?;
                commit.execute(rusqlite::params![key, op, time])?;
            }
        }
        tx.commit()?;
        Ok(())
    })
    .await
    .map_err(|e| BenchError::Setup(format!("seeding: {e}")))?
}
