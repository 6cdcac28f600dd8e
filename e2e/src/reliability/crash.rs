//! The `crash` section: an atServer (@alice, the real binary and store) under mixed load is
//! killed with SIGKILL again and again. After every restart each acknowledged write and delete
//! must be there (a cut-off one may go either way, but whole), a sync client must find the commit
//! log without gaps, enrollment requests must still be there; at the end every acknowledged
//! notification must have reached the peer (@bob, stopped with SIGSTOP for stretches so
//! notifications queue) exactly once.

mod ledger;
mod load;
mod sync;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use at_protocol::client::{AtConnection, MonitorConnection};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::context::Ctx;
use super::error::ReliabilityError;
use super::options::Scale;
use super::report::{Figure, Must, SectionReport};
use super::servers::{store_file, DirectoryRun, Server, ServerSpec};
use crate::bench::stats::percentile_sorted;
use ledger::{Ledger, State};
use load::{Enrollments, Seen, Sent, PEER, SUFFIX};
use sync::SyncClient;

/// Violations kept in the report word for word; the rest are counted.
const MAX_LISTED: usize = 40;
/// How long the end of the run waits for queued notifications to reach the peer.
const DELIVERY_WAIT: Duration = Duration::from_secs(180);

/// The section's sizes.
struct Plan {
    cycles: usize,
    /// Keys written and deleted (and read back after every restart).
    pool: usize,
    /// Load runs this long (uniformly random within) before the kill.
    kill_after_ms: (u64, u64),
    notify_every: Duration,
    enroll_every: Duration,
    /// The peer is stopped for this many cycles, then running for as many.
    pause_period: usize,
}

impl Plan {
    fn of(scale: Scale) -> Plan {
        Plan {
            cycles: scale.pick(1000, 10),
            pool: scale.pick(240, 30),
            kill_after_ms: (100, 400),
            notify_every: Duration::from_millis(40),
            enroll_every: Duration::from_millis(150),
            pause_period: 3,
        }
    }
}

pub async fn run(ctx: &Ctx) -> Result<SectionReport, ReliabilityError> {
    let plan = Plan::of(ctx.scale);
    let directory = DirectoryRun::start(
        ctx,
        "crash-directory",
        // Every restart looks @bob up again from one address: keep the per-source limit away.
        &[
            "--rate-limit-per-second=1000000",
            "--rate-limit-burst=1000000",
        ],
    )
    .await?;
    let root = directory.directory.root_addr;
    let mut alice = ServerSpec::new(ctx, "@alice", "127.0.0.2")?;
    let mut bob = ServerSpec::new(ctx, PEER, "127.0.0.3")?;
    for spec in [&mut alice, &mut bob] {
        spec.root_server = Some(root);
        spec.extra = [
            // The peer's monitor connection sends nothing for the whole run.
            "--auth-idle-timeout-secs=86400",
            // Retry quickly, and never give up, on a peer that is stopped for seconds at a time:
            // a notification marked errored would be a give-up, not a delivery.
            "--delivery-backoff-ms=50",
            "--delivery-max-backoff-ms=1000",
            "--delivery-quarantine-ms=200",
            "--delivery-max-attempts=1000000",
        ]
        .map(String::from)
        .to_vec();
    }
    directory.register("@alice", alice.addr).await?;
    directory.register(PEER, bob.addr).await?;
    let peer = Server::start(ctx, &bob).await?;
    let outcome = match peer.owner(ctx).await {
        Ok(c) => match c.monitor("monitor").await {
            Ok(monitor) => {
                let seen: Seen = Arc::new(Mutex::new(HashMap::new()));
                let watcher = tokio::spawn(watch(monitor, seen.clone()));
                let out = cycles(ctx, &plan, &alice, &peer, &seen).await;
                watcher.abort();
                out
            }
            Err(e) => Err(e.into()),
        },
        Err(e) => Err(e),
    };
    let _ = peer.pause(false);
    peer.stop().await;
    directory.stop().await;
    let tally = outcome?;
    Ok(tally.report(ctx, &plan))
}

/// Counts the peer's notifications by id.
async fn watch(mut monitor: MonitorConnection, seen: Seen) {
    while let Some(json) = monitor.next_notification().await {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&json) else {
            continue;
        };
        if let Some(id) = v["id"].as_str().filter(|id| id.starts_with("crash-")) {
            *lock(&seen).entry(id.to_owned()).or_insert(0) += 1;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Everything the cycles found.
#[derive(Default)]
struct Tally {
    cycles: usize,
    ledger: Ledger,
    sent: Sent,
    enrollments: Enrollments,
    sync: SyncClient,
    restarts_ms: Vec<f64>,
    /// Acknowledged writes whose commit row was missing or older after a kill.
    lost_commits: u64,
    lost_enrollments: u64,
    lost_notifications: u64,
    duplicated_notifications: u64,
    unexpected_notifications: u64,
    delivered: usize,
    /// Reached the peer's store without its monitor seeing them.
    stored_unseen: u64,
    violations: Vec<String>,
}

async fn cycles(
    ctx: &Ctx,
    plan: &Plan,
    spec: &ServerSpec,
    peer: &Server,
    seen: &Seen,
) -> Result<Tally, ReliabilityError> {
    let mut t = Tally::default();
    let mut rng = StdRng::seed_from_u64(0x0c4a_5e16);
    let mut paused = false;
    let config = ctx.pki.at_client()?;
    for cycle in 0..plan.cycles {
        let pause = (cycle / plan.pause_period) % 2 == 1;
        if pause != paused {
            peer.pause(pause)?;
            paused = pause;
        }
        let server = Server::start(ctx, spec)
            .await
            .map_err(|e| ReliabilityError::Violated(format!("cycle {cycle}: restart: {e}")))?;
        t.restarts_ms.push(server.to_ready.as_secs_f64() * 1000.0);
        let mut owner = server.owner(ctx).await?;
        verify_keys(cycle, &mut owner, &mut t.ledger).await?;
        verify_enrollments(cycle, &mut owner, &mut t, false).await?;
        let mut sync_conn = server.owner(ctx).await?;
        t.sync
            .catch_up(cycle, &mut sync_conn)
            .await
            .map_err(ReliabilityError::Violated)?;

        let writer = tokio::spawn(load::writer(
            cycle,
            owner,
            std::mem::take(&mut t.ledger),
            plan.pool,
            rng.gen(),
        ));
        let notifier = tokio::spawn(load::notifier(
            cycle,
            server.owner(ctx).await?,
            std::mem::take(&mut t.sent),
            plan.notify_every,
        ));
        let enroller = tokio::spawn(load::enroller(
            cycle,
            server.owner(ctx).await?,
            server.addr,
            config.clone(),
            std::mem::take(&mut t.enrollments),
            plan.enroll_every,
        ));
        let syncer = tokio::spawn(load::syncer(cycle, sync_conn, std::mem::take(&mut t.sync)));
        let (lo, hi) = plan.kill_after_ms;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(lo..=hi))).await;
        server.kill().await?;
        let joined = |e: tokio::task::JoinError| ReliabilityError::Setup(format!("load task: {e}"));
        t.ledger = writer.await.map_err(joined)?;
        t.sent = notifier.await.map_err(joined)?;
        t.enrollments = enroller.await.map_err(joined)?;
        t.sync = syncer.await.map_err(joined)?;
        check_store(cycle, spec, &mut t)?;
        t.cycles += 1;
    }
    if paused {
        peer.pause(false)?;
    }
    // One more start: the last kill's writes are read back, every enrollment is checked, and the
    // queued notifications go out.
    let server = Server::start(ctx, spec).await?;
    t.restarts_ms.push(server.to_ready.as_secs_f64() * 1000.0);
    let mut owner = server.owner(ctx).await?;
    verify_keys(plan.cycles, &mut owner, &mut t.ledger).await?;
    verify_enrollments(plan.cycles, &mut owner, &mut t, true).await?;
    let mut sync_conn = server.owner(ctx).await?;
    t.sync
        .catch_up(plan.cycles, &mut sync_conn)
        .await
        .map_err(ReliabilityError::Violated)?;
    let mut peer_owner = peer.owner(ctx).await?;
    await_notifications(&mut t, seen, &mut peer_owner).await?;
    server.stop().await;
    check_store(plan.cycles, spec, &mut t)?;
    Ok(t)
}

/// Reads every key of the ledger back with `llookup`.
async fn verify_keys(
    cycle: usize,
    owner: &mut AtConnection,
    ledger: &mut Ledger,
) -> Result<(), ReliabilityError> {
    for key in ledger.keys() {
        let reply = owner.send_raw(&format!("llookup:{key}")).await?;
        let actual = if let Some(v) = reply.strip_prefix("data:") {
            State::Value(v.to_owned())
        } else if reply.contains("AT0015") {
            State::Absent
        } else {
            return Err(ReliabilityError::Violated(format!(
                "cycle {cycle}: `llookup:{key}` got {reply:?}"
            )));
        };
        ledger.observe(cycle, &key, actual);
    }
    Ok(())
}

/// Fetches the enrollments acknowledged since the last check (all of them when `all`).
async fn verify_enrollments(
    cycle: usize,
    owner: &mut AtConnection,
    t: &mut Tally,
    all: bool,
) -> Result<(), ReliabilityError> {
    let from = if all { 0 } else { t.enrollments.checked };
    for id in &t.enrollments.acked[from..] {
        let reply = owner
            .send_raw(&format!(r#"enroll:fetch:{{"enrollmentId":"{id}"}}"#))
            .await?;
        let state = reply
            .strip_prefix("data:")
            .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .and_then(|v| v["status"].as_str().map(str::to_owned));
        if state.as_deref() != Some("pending") {
            t.lost_enrollments += 1;
            t.violations.push(format!(
                "cycle {cycle}: acknowledged enrollment {id} reads back as {reply:?}"
            ));
        }
    }
    t.enrollments.checked = t.enrollments.acked.len();
    Ok(())
}

/// Between a kill and the next start: the sync client against the store's commit log, and every
/// acknowledged write's commit row.
fn check_store(cycle: usize, spec: &ServerSpec, t: &mut Tally) -> Result<(), ReliabilityError> {
    let rows = t
        .sync
        .check_store(cycle, &store_file(&spec.data_dir), SUFFIX)?;
    for (key, acked) in t.ledger.acked_commits() {
        let row = rows.get(key).copied();
        if row.is_none_or(|r| r < acked) {
            t.lost_commits += 1;
            t.violations.push(format!(
                "cycle {cycle}: {key} was acknowledged with commit id {acked}; the commit log has {row:?}"
            ));
        }
    }
    Ok(())
}

/// Waits until every acknowledged notification has reached the peer's monitor (or the wait is
/// over), then counts lost, duplicated and unexpected ones. One the monitor did not see (a lagging
/// monitor skips) but the peer's store holds has reached the peer.
async fn await_notifications(
    t: &mut Tally,
    seen: &Seen,
    peer_owner: &mut AtConnection,
) -> Result<(), ReliabilityError> {
    let deadline = Instant::now() + DELIVERY_WAIT;
    loop {
        let missing = {
            let seen = lock(seen);
            t.sent
                .acked
                .iter()
                .filter(|id| !seen.contains_key(*id))
                .count()
        };
        if missing == 0 || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Cut-off notifications may still be on their way; give them a moment beyond the acked ones.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = lock(seen).clone();
    t.delivered = seen.len();
    for id in &t.sent.acked {
        if seen.contains_key(id) {
            continue;
        }
        let status = peer_owner.send_raw(&format!("notify:status:{id}")).await?;
        if status == "data:delivered" {
            t.delivered += 1;
            t.stored_unseen += 1;
            continue;
        }
        t.lost_notifications += 1;
        t.violations.push(format!(
            "notification {id} was acknowledged but never reached {PEER} ({} s after the last restart; its status there: {status:?})",
            DELIVERY_WAIT.as_secs()
        ));
    }
    for (id, &n) in seen.iter() {
        if n > 1 {
            t.duplicated_notifications += 1;
            t.violations
                .push(format!("notification {id} reached {PEER} {n} times"));
        }
        if !t.sent.acked.contains(id) && !t.sent.maybe.contains(id) {
            t.unexpected_notifications += 1;
            t.violations.push(format!(
                "notification {id} reached {PEER} but was never sent"
            ));
        }
    }
    Ok(())
}

impl Tally {
    fn report(mut self, ctx: &Ctx, plan: &Plan) -> SectionReport {
        let mut s = SectionReport::new(
            "crash",
            "Crash safety",
            format!(
                "The `atserver` binary in {bin} as @alice (its real SQLite store, found through the \
                 `atdirectory` on PostgreSQL) killed with SIGKILL {cycles} times. Each cycle: start it \
                 on the same data directory and address, read back all {pool} keys of the ledger with \
                 `llookup` and fetch the enrollments acknowledged since the last check, catch the sync \
                 client up, then run for a random {lo}–{hi} ms: one connection updating and deleting \
                 self, public and @bob-shared keys back to back, one sending a notification to @bob \
                 every {notify} ms, one issuing an OTP and an unauthenticated connection requesting an \
                 enrollment with it every {enroll} ms, one sync client pulling `sync:from` pages; then \
                 SIGKILL. Between the kill and the next start the store file is opened and its commit \
                 log compared with the sync client's replica and with every acknowledged write's commit \
                 id. @bob (a second atserver) is SIGSTOPped for {period} cycles out of every {twice}, so \
                 notifications queue at @alice and deliveries are cut off mid-way; his monitor counts \
                 notifications by id. At the end @alice starts once more and the run waits up to {wait} \
                 s for every acknowledged notification to reach @bob. Ledger rules: an acknowledged \
                 write must be there; one cut off by the kill may be there or not, but whole; \
                 acknowledged commit ids must rise across restarts.",
                bin = ctx.bin_dir.display(),
                cycles = plan.cycles,
                pool = plan.pool,
                lo = plan.kill_after_ms.0,
                hi = plan.kill_after_ms.1,
                notify = plan.notify_every.as_millis(),
                enroll = plan.enroll_every.as_millis(),
                period = plan.pause_period,
                twice = plan.pause_period * 2,
                wait = DELIVERY_WAIT.as_secs(),
            ),
        );
        let acked = self.ledger.acknowledged
            + self.sent.acked.len() as u64
            + self.enrollments.acked.len() as u64;
        let lost =
            self.ledger.lost + self.lost_commits + self.lost_enrollments + self.lost_notifications;
        let duplicated = self.duplicated_notifications
            + self.unexpected_notifications
            + self.ledger.reused_commit_ids;
        self.restarts_ms.sort_by(f64::total_cmp);
        s.figure(Figure::count("kill -9 cycles", self.cycles as u64))
            .figure(Figure::count("operations acknowledged", acked))
            .figure(Figure::zero("lost", lost))
            .figure(Figure::zero("duplicated", duplicated))
            .figure(Figure::zero(
                "sync gaps",
                self.sync.gaps + self.sync.out_of_order,
            ))
            .figure(Figure::new(
                "restart to first greeting, median",
                percentile_sorted(&self.restarts_ms, 50.0),
                "ms",
                Must::Nothing,
            ))
            .figure(Figure::new(
                "restart to first greeting, p99",
                percentile_sorted(&self.restarts_ms, 99.0),
                "ms",
                Must::Nothing,
            ))
            .figure(Figure::count(
                "acknowledged updates and deletes",
                self.ledger.acknowledged,
            ))
            .figure(Figure::count(
                "updates and deletes cut off by a kill",
                self.ledger.unacknowledged,
            ))
            .figure(Figure::count(
                "acknowledged notifications",
                self.sent.acked.len() as u64,
            ))
            .figure(Figure::count(
                "notifications that reached @bob",
                self.delivered as u64,
            ))
            .figure(Figure::count(
                "of those, in @bob's store but not seen by his monitor",
                self.stored_unseen,
            ))
            .figure(Figure::count(
                "acknowledged enrollment requests",
                self.enrollments.acked.len() as u64,
            ))
            .figure(Figure::count("sync entries replayed", self.sync.entries));
        let mut all = std::mem::take(&mut self.violations);
        all.append(&mut self.ledger.violations);
        all.append(&mut self.sync.violations);
        all.append(&mut self.sent.refused);
        all.append(&mut self.enrollments.refused);
        let extra = all.len().saturating_sub(MAX_LISTED);
        s.violations = all.into_iter().take(MAX_LISTED).collect();
        if extra > 0 {
            s.violations.push(format!("… and {extra} more"));
        }
        s
    }
}
