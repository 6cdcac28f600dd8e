//! The `hostile` section: hostile sessions (random bytes, silent and half-finished TLS
//! handshakes, slowloris, oversized lines, command floods, guessing, a reader that never reads)
//! against one atServer and the atDirectory's root port while honest clients run a steady
//! workload. Every hostile session must be ended by the server (a close or an error) within the
//! server's own limits; honest clients' latency with the attack is compared with their latency
//! without it, in the same run.

mod attack;
mod honest;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use at_protocol::client::RootClient;
use at_protocol::AtSign;
use futures::StreamExt;
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use super::context::Ctx;
use super::error::ReliabilityError;
use super::options::Scale;
use super::report::{Figure, Must, SectionReport};
use super::servers::{DirectoryRun, Server, ServerSpec};
use crate::bench::stats::percentile_sorted;
use attack::{Ending, Kind, Limits, Target, Victim};
use honest::{Samples, Work};

/// Violations kept in the report word for word; the rest are counted.
const MAX_LISTED: usize = 40;
/// Public keys the atServer holds, so a `scan` reply is large (the stalled reader's lever).
const PUBLIC_KEYS: usize = 200;

struct Plan {
    sessions: usize,
    /// Hostile sessions open at once (the attacker runs on a thread of its own as well).
    concurrency: usize,
    /// Honest load without the attack, before it and again after it.
    quiet: Duration,
}

impl Plan {
    fn of(scale: Scale) -> Plan {
        Plan {
            sessions: scale.pick(10_000, 200),
            concurrency: scale.pick(96, 24),
            quiet: Duration::from_secs(scale.pick(30, 3) as u64),
        }
    }
}

/// The servers' limits in this section (their flags below say the same).
const AT_LIMITS: Limits = Limits {
    handshake: Duration::from_secs(3),
    // --idle-timeout-secs 5, plus the idle reaper's 5 s period.
    idle: Duration::from_secs(10),
    max_line: 256 * 1024,
    slack: Duration::from_secs(10),
};
const DIR_LIMITS: Limits = Limits {
    handshake: Duration::from_secs(3),
    idle: Duration::from_secs(5),
    max_line: 255,
    slack: Duration::from_secs(10),
};

/// Honest clients: two owner connections to the atServer (one exchange each per 10 ms) and two
/// root clients (one lookup each per 50 ms: together under the per-source rate limit of 50/s).
const AT_CLIENTS: usize = 2;
const AT_EVERY: Duration = Duration::from_millis(10);
const DIR_CLIENTS: usize = 2;
const DIR_EVERY: Duration = Duration::from_millis(50);

pub async fn run(ctx: &Ctx) -> Result<SectionReport, ReliabilityError> {
    let plan = Plan::of(ctx.scale);
    let directory = DirectoryRun::start(
        ctx,
        "hostile-directory",
        &[
            // The shipped per-source rate limit (50/s, burst 200) stays; shorter handshake and
            // idle limits let 10,000 sessions fit in minutes.
            "--handshake-timeout-ms=3000",
            "--idle-timeout-ms=5000",
        ],
    )
    .await?;
    let mut spec = ServerSpec::new(ctx, "@alice", "127.0.0.2")?;
    spec.root_server = Some(directory.directory.root_addr);
    spec.extra = [
        "--idle-timeout-secs=5",
        "--handshake-timeout-secs=3",
        "--max-line-bytes=262144",
    ]
    .map(String::from)
    .to_vec();
    directory.register("@alice", spec.addr).await?;
    let server = Server::start(ctx, &spec).await?;
    let outcome = attack_with_honest_load(ctx, &plan, &server, &directory).await;
    server.stop().await;
    directory.stop().await;
    outcome
}

async fn attack_with_honest_load(
    ctx: &Ctx,
    plan: &Plan,
    server: &Server,
    directory: &DirectoryRun,
) -> Result<SectionReport, ReliabilityError> {
    let mut owner = server.owner(ctx).await?;
    for i in 0..PUBLIC_KEYS {
        owner
            .send_data(&format!(
                "update:public:p{i}.hostile@alice a-public-value-of-some-length-{i}"
            ))
            .await?;
    }
    let phase = Arc::new(AtomicU8::new(honest::QUIET));
    let mut honest_tasks = Vec::new();
    for i in 0..AT_CLIENTS {
        let key = format!("h{i}.hostile@alice");
        let mut conn = server.owner(ctx).await?;
        conn.send_data(&format!("update:{key} first")).await?;
        let work = Work::AtServer { conn, key };
        honest_tasks.push((
            Target::AtServer,
            tokio::spawn(honest::run(work, AT_EVERY, phase.clone())),
        ));
    }
    let config = ctx.pki.at_client()?;
    let atsign = AtSign::parse("@alice").map_err(|e| ReliabilityError::Setup(e.to_string()))?;
    let root = directory.directory.root_addr;
    for _ in 0..DIR_CLIENTS {
        let client = RootClient::new(config.clone(), root.ip().to_string(), root.port())
            .with_sni("localhost");
        let work = Work::Directory {
            root: client,
            atsign: atsign.clone(),
        };
        honest_tasks.push((
            Target::Directory,
            tokio::spawn(honest::run(work, DIR_EVERY, phase.clone())),
        ));
    }

    tokio::time::sleep(plan.quiet).await;
    phase.store(honest::ATTACK, Ordering::SeqCst);
    let victims = victims(ctx, server, directory)?;
    let endings = run_attacker(plan, victims).await?;
    phase.store(honest::QUIET, Ordering::SeqCst);
    tokio::time::sleep(plan.quiet).await;
    phase.store(honest::STOP, Ordering::SeqCst);

    let mut samples: BTreeMap<Target, Samples> = BTreeMap::new();
    for (target, task) in honest_tasks {
        let s = task
            .await
            .map_err(|e| ReliabilityError::Setup(format!("honest client: {e}")))?;
        samples.entry(target).or_default().merge(s);
    }
    Ok(report(plan, endings, samples))
}

fn victims(
    ctx: &Ctx,
    server: &Server,
    directory: &DirectoryRun,
) -> Result<[Victim; 2], ReliabilityError> {
    let tls_config = ctx.pki.rustls_client()?;
    let name = |n: &str| {
        ServerName::try_from(n.to_owned())
            .map_err(|e| ReliabilityError::Setup(format!("server name {n}: {e}")))
    };
    Ok([
        Victim {
            target: Target::AtServer,
            addr: server.addr,
            server_name: name(&server.addr.ip().to_string())?,
            limits: AT_LIMITS,
            tls: TlsConnector::from(tls_config.clone()),
            tls_config: tls_config.clone(),
        },
        Victim {
            target: Target::Directory,
            addr: directory.directory.root_addr,
            server_name: name("localhost")?,
            limits: DIR_LIMITS,
            tls: TlsConnector::from(tls_config.clone()),
            tls_config,
        },
    ])
}

/// Every session's target, kind and ending.
type Endings = Vec<(Target, Kind, Ending)>;

/// The attacker on a thread and runtime of its own, so its work competes with the honest
/// clients for the cores (as a remote attacker's packets would), not for their runtime's
/// workers. Sessions alternate between the targets and cycle through the kinds.
async fn run_attacker(plan: &Plan, victims: [Victim; 2]) -> Result<Endings, ReliabilityError> {
    let (sessions, concurrency) = (plan.sessions, plan.concurrency);
    let thread = std::thread::Builder::new()
        .name("attacker".into())
        .spawn(move || -> Result<Endings, String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("attacker runtime: {e}"))?;
            Ok(rt.block_on(async {
                futures::stream::iter(0..sessions)
                    .map(|n| {
                        let v = &victims[n % 2];
                        let kinds = Kind::against(v.target);
                        let kind = kinds[(n / 2) % kinds.len()];
                        async move { (v.target, kind, attack::session(n, kind, v).await) }
                    })
                    .buffer_unordered(concurrency)
                    .collect::<Vec<_>>()
                    .await
            }))
        })
        .map_err(|e| ReliabilityError::Setup(format!("attacker thread: {e}")))?;
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .map_err(|e| ReliabilityError::Setup(format!("attacker thread: {e}")))?
        .map_err(|_| ReliabilityError::Setup("the attacker thread panicked".into()))?
        .map_err(ReliabilityError::Setup)
}

fn report(plan: &Plan, endings: Endings, samples: BTreeMap<Target, Samples>) -> SectionReport {
    let mut s = SectionReport::new(
        "hostile",
        "Hostile network",
        format!(
            "One `atserver` (@alice on 127.0.0.2: --idle-timeout-secs 5, --handshake-timeout-secs 3, \
             --max-line-bytes 262144, 200 connections, {PUBLIC_KEYS} public keys) and the \
             `atdirectory` root port (rate limit 50/s, burst 200 per source as shipped; handshake 3 s, \
             idle 5 s; 255-byte lines) on PostgreSQL. {sessions} hostile sessions, alternating \
             between the two and cycling through: random bytes instead of a ClientHello, a silent \
             TCP connection, a ClientHello and nothing more, slowloris (one byte per 500 ms, never a \
             newline), a line one chunk longer than the limit, a flood of 300 pipelined commands \
             (atServer: verbs needing authentication and nonsense; atDirectory: lookups, ended by \
             the rate limit), guessing (atServer: 8 wrong CRAM answers on one connection; \
             atDirectory: 2 unregistered names, the second slowed by the miss delay), and, against \
             the atServer only, a reader that writes `scan` forever and never reads. Each session \
             comes from one of 100 loopback addresses (127.0.1.x), never the honest clients' \
             127.0.0.1; at most {concurrency} are open at once, run by one thread with its own \
             single-threaded runtime. A session is hung when the server has not ended it by its own \
             limit for that abuse plus 10 s. Honest clients, in the same process on the main \
             runtime: {AT_CLIENTS} atServer owner connections (an `llookup` of their key every {at} \
             ms, every tenth an `update`) and {DIR_CLIENTS} root clients (a lookup of @alice every \
             {dir} ms on a kept connection); their latencies are taken for {quiet} s before the \
             attack and {quiet} s after it (without) and while it runs (with).",
            sessions = plan.sessions,
            concurrency = plan.concurrency,
            at = AT_EVERY.as_millis(),
            dir = DIR_EVERY.as_millis(),
            quiet = plan.quiet.as_secs(),
        ),
    );
    let started = endings.len() as u64;
    let mut hung = Vec::new();
    let mut by_kind: BTreeMap<(Target, Kind), [u64; 3]> = BTreeMap::new();
    for (target, kind, ending) in endings {
        let slot = by_kind.entry((target, kind)).or_default();
        match ending {
            Ending::Closed => slot[0] += 1,
            Ending::ErrorReply => slot[1] += 1,
            Ending::Answered => slot[2] += 1,
            Ending::Hung(what) => hung.push(what),
        }
    }
    let ended = started - hung.len() as u64;
    s.figure(Figure::count("hostile sessions started", started))
        .figure(Figure::new(
            "hostile sessions ended by the server (close or error)",
            ended as f64,
            "",
            Must::Equal {
                value: started as f64,
            },
        ))
        .figure(Figure::zero("hostile sessions hung", hung.len() as u64));
    let mut violations = Vec::new();
    for (target, smp) in &samples {
        let who = match target {
            Target::AtServer => "atServer",
            Target::Directory => "atDirectory",
        };
        let mut q = smp.ms[0].clone();
        let mut a = smp.ms[1].clone();
        q.sort_by(f64::total_cmp);
        a.sort_by(f64::total_cmp);
        let p = |v: &[f64], pct: f64| percentile_sorted(v, pct);
        s.figure(Figure::count(
            &format!(
                "{who} honest exchanges: {} without the attack, {} with it",
                q.len(),
                a.len()
            ),
            (q.len() + a.len()) as u64,
        ));
        for (label, pct) in [("p50", 50.0), ("p99", 99.0)] {
            s.figure(Figure::new(
                &format!("{who} honest {label} without the attack"),
                p(&q, pct),
                "ms",
                Must::Nothing,
            ))
            .figure(Figure::new(
                &format!("{who} honest {label} during the attack"),
                p(&a, pct),
                "ms",
                Must::Nothing,
            ));
        }
        let ratio = if p(&q, 99.0) > 0.0 {
            p(&a, 99.0) / p(&q, 99.0)
        } else {
            f64::INFINITY
        };
        s.figure(Figure::new(
            &format!("{who} honest p99 with / without the attack"),
            ratio,
            "×",
            Must::AtMost { value: 2.0 },
        ));
        if q.is_empty() || a.is_empty() {
            violations.push(format!("{who}: the honest clients took no samples"));
        }
        violations.extend(smp.failures.iter().map(|f| format!("{who}: {f}")));
    }
    for ((target, kind), [closed, errors, answered]) in &by_kind {
        s.figure(Figure::count(
            &format!(
                "{target:?} {kind:?}: closed {closed}, error replies {errors}, answered {answered}"
            ),
            closed + errors + answered,
        ));
    }
    violations.extend(hung);
    let extra = violations.len().saturating_sub(MAX_LISTED);
    s.violations = violations.into_iter().take(MAX_LISTED).collect();
    if extra > 0 {
        s.violations.push(format!("… and {extra} more"));
    }
    s
}
