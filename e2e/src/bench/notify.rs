//! Notification latency through two atServers (@alice's client → @alice's server → @bob's server →
//! @bob's monitor) against one TLS round trip on loopback.

use std::time::{Duration, Instant};

use super::atserver::{ms, AtServer, Node};
use super::context::Ctx;
use super::directory::{register_one, Directory};
use super::echo::{self, EchoConn};
use super::error::BenchError;
use super::load;
use super::plot;
use super::process;
use super::report::{Figure, Section, Target};
use super::stats::{latency_percentiles, Summary};

const REFERENCE_LATENCY: &str = "4–15 ms end-to-end, encrypted message between two Atsigns";
/// Longest wait for one notification before the run is called broken.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(ctx: &Ctx) -> Result<Vec<Section>, BenchError> {
    let reps = ctx.reps().min(3);
    let n = ctx.mode.pick(1000, 5);
    let warmup = ctx.mode.pick(50, 2);
    let rtt = round_trips(ctx, reps, ctx.mode.pick(2000, 20), warmup).await?;
    let mut s = Section::new(
        "notification",
        "Notification latency",
        format!(
            "Two release `atserver` processes, @alice on 127.0.0.2 and @bob on 127.0.0.3, each with a \
             certificate for exactly its address, found through the release `atdirectory` (fresh \
             PostgreSQL database). @bob's owner connection runs `monitor`; @alice's owner connection sends \
             `notify:id:<id>:@bob:m<i>.bench@alice:hello` one at a time. Timed: from writing the notify \
             line to @bob's monitor receiving the notification with that id (so it includes @alice's \
             reply, her server's delivery over its pooled server-to-server connection, and @bob's \
             server pushing to the monitor). The value is plain text: the reference figure includes \
             client-side encryption, which is not server work. Warm-up: {warmup} notifications (the first \
             opens the server-to-server connection). {n} per repetition, {reps} repetitions; \
             percentiles per repetition, min/median/max across repetitions. Baseline: one TLS round \
             trip on loopback (a line to the bare rustls echo server and back), same percentiles; ratio \
             = ours / baseline."
        ),
    );
    let sum = |v: &[f64]| Summary::of(v).ok_or_else(|| BenchError::Setup("no repetitions".into()));
    let Some(url) = ctx.database_url.as_deref() else {
        s.not_measured(
            "notification latency @alice → @bob",
            "no PostgreSQL for the atDirectory (DATABASE_URL unset)",
        );
        for (i, name) in ["p50", "p99", "p99.9"].iter().enumerate() {
            s.figures.push(Figure::new(
                &format!("baseline only: TLS round trip on loopback, {name}"),
                "ms",
                sum(&rtt.per_rep[i])?,
                Target::None,
            ));
        }
        return Ok(vec![s]);
    };
    let ours = notifications(ctx, url, reps, n, warmup).await?;
    for (i, name) in ["p50", "p99", "p99.9"].iter().enumerate() {
        let target = if *name == "p99" {
            Target::AtMost { value: 5.0 }
        } else {
            Target::None
        };
        s.figures.push(
            Figure::new(
                &format!("notification latency @alice → @bob, {name}"),
                "ms",
                sum(&ours.per_rep[i])?,
                target,
            )
            .with_baseline("TLS round trip on loopback", Summary::of(&rtt.per_rep[i]))
            .with_reference(REFERENCE_LATENCY),
        );
    }
    s.notes.push(format!(
        "notification latency, all repetitions: {}",
        ms(&ours.all)
    ));
    s.notes.push(format!(
        "TLS round trip on loopback, all repetitions: {}",
        ms(&rtt.all)
    ));
    let png = "notification-latency.png";
    if plot::latency_histogram(&ctx.out_dir.join(png), &ours.all, &rtt.all)? {
        s.plots.push(png.into());
        s.notes.push(format!(
            "{png}: per-notification latency, x from 0 to the combined p99 in 60 equal bins, y the \
             share of each series; red notification @alice → @bob, blue TLS round trip (no text: \
             plotters is built without fonts)"
        ));
    }
    Ok(vec![s])
}

/// Latencies of a run: p50/p99/p99.9 of each repetition, and every sample.
struct Latencies {
    per_rep: [Vec<f64>; 3],
    all: Vec<f64>,
}

impl Latencies {
    fn new() -> Self {
        Latencies {
            per_rep: [Vec::new(), Vec::new(), Vec::new()],
            all: Vec::new(),
        }
    }

    fn push_rep(&mut self, samples: Vec<f64>) {
        for (slot, p) in self.per_rep.iter_mut().zip(latency_percentiles(&samples)) {
            slot.push(p);
        }
        self.all.extend(samples);
    }
}

async fn round_trips(
    ctx: &Ctx,
    reps: usize,
    n: usize,
    warmup: usize,
) -> Result<Latencies, BenchError> {
    let (echo_child, echo_addr) = echo::spawn(ctx).await?;
    let tls = ctx.pki.rustls_client()?;
    let conn = EchoConn::connect(
        echo_addr,
        &tls,
        "notify:id:bench-0:@bob:m0.bench@alice:hello",
    )
    .await?;
    let mut conns = load::drive(vec![conn], warmup).await?.conns;
    let mut out = Latencies::new();
    for _ in 0..reps {
        let run = load::drive(conns, n).await?;
        conns = run.conns;
        out.push_rep(run.latencies_ms);
    }
    process::stop(echo_child, Duration::from_secs(5)).await;
    Ok(out)
}

async fn notifications(
    ctx: &Ctx,
    url: &str,
    reps: usize,
    n: usize,
    warmup: usize,
) -> Result<Latencies, BenchError> {
    let directory = Directory::start(ctx, url).await?;
    let mut servers = Vec::new();
    for (atsign, host) in [("@alice", "127.0.0.2"), ("@bob", "127.0.0.3")] {
        let node = Node {
            atsign: atsign.into(),
            host: host.into(),
            cert: Some(ctx.pki.leaf(&format!("notify-{host}"), &[host])?),
            root_server: Some(directory.root_addr),
        };
        let dir = ctx.dir(&format!("notify-{}", atsign.trim_start_matches('@')))?;
        let server = AtServer::start_node(ctx, &node, &dir, 200).await?;
        register_one(directory.http_addr, atsign, host, server.addr.port()).await?;
        servers.push(server);
    }
    let result = async {
        let mut alice = servers[0].owner(ctx).await?;
        let mut monitor = servers[1].owner(ctx).await?.monitor("monitor").await?;
        let mut next = 0usize;
        let mut send = async |count: usize| -> Result<Vec<f64>, BenchError> {
            let mut samples = Vec::with_capacity(count);
            for _ in 0..count {
                let id = format!("bench-{next}");
                let command = format!("notify:id:{id}:@bob:m{next}.bench@alice:hello");
                next += 1;
                let started = Instant::now();
                let reply = alice.send_raw(&command).await?;
                if !reply.starts_with("data:") {
                    return Err(BenchError::Setup(format!("`{command}` got {reply:?}")));
                }
                loop {
                    let json = tokio::time::timeout(DELIVERY_TIMEOUT, monitor.next_notification())
                        .await
                        .map_err(|_| {
                            BenchError::Timeout(format!("notification {id} at @bob's monitor"))
                        })?
                        .ok_or_else(|| BenchError::Setup("@bob's monitor closed".into()))?;
                    let v: serde_json::Value = serde_json::from_str(&json)
                        .map_err(|e| BenchError::Setup(format!("monitor line {json:?}: {e}")))?;
                    if v["id"] == id.as_str() {
                        break;
                    }
                }
                samples.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            Ok(samples)
        };
        send(warmup).await?;
        let mut out = Latencies::new();
        for _ in 0..reps {
            out.push_rep(send(n).await?);
        }
        Ok(out)
    }
    .await;
    for server in servers {
        server.stop().await;
    }
    process::stop(directory.child, Duration::from_secs(10)).await;
    result
}
