//! Directory outages: two `atdirectory` replicas on a PostgreSQL primary with a synchronous
//! streaming standby, under lookup load (root protocol, TLS) and registration load (HTTP API),
//! while the harness restarts the primary and then fails over to the standby. Every lookup answer
//! is checked against a ledger of the registrations that were sent and acknowledged.

mod forwarder;
mod ledger;
mod load;
mod pg_pair;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use self::forwarder::Forwarder;
use self::ledger::{Ledger, Tally};
use self::pg_pair::PgPair;
use super::context::Ctx;
use super::error::ReliabilityError;
use super::report::{Figure, Must, SectionReport};
use crate::bench::directory::{self, Directory};
use crate::bench::process;

/// The directories' flags: a fast database check, a short query timeout, found entries due for
/// revalidation after 5 s (so the outage exercises stale entries too), and no miss delays (the
/// load looks up unknown names on purpose).
const DIRECTORY_FLAGS: [&str; 10] = [
    "--db-check-interval-ms",
    "200",
    "--db-timeout-ms",
    "1000",
    "--cache-ttl-ms",
    "5000",
    "--negative-ttl-ms",
    "2000",
    "--miss-allowance",
    "1000000000",
];

struct Plan {
    restarts: usize,
    /// How long the database stays down in each fault.
    down: Duration,
    /// Load before the first fault and after each recovery.
    settle: Duration,
    /// Atsigns registered (and so cached) before the load starts.
    seeded: usize,
    lookup_workers: usize,
    registration_workers: usize,
}

impl Plan {
    fn of(ctx: &Ctx) -> Plan {
        let secs = |full, short| Duration::from_secs(ctx.scale.pick(full, short) as u64);
        Plan {
            restarts: ctx.scale.pick(3, 1),
            down: secs(10, 2),
            settle: secs(20, 4),
            seeded: ctx.scale.pick(200, 20),
            lookup_workers: 6,
            registration_workers: 4,
        }
    }
}

pub async fn run(ctx: &Ctx) -> Result<SectionReport, ReliabilityError> {
    let plan = Plan::of(ctx);
    let mut report = SectionReport::new(
        "outage",
        "Directory outages",
        format!(
            "PostgreSQL primary and a streaming standby (pg_basebackup -R) on loopback, replication \
             synchronous (synchronous_standby_names='*', synchronous_commit=on) so an acknowledged \
             commit is on the standby; two `atdirectory` replicas (from --bin-dir) reach the primary through \
             a TCP forwarder the harness switches at failover (what a Kubernetes Service or VIP in \
             front of the pair does; sqlx has no multi-host URL). {seeded} Atsigns registered and \
             looked up on both replicas first; then {lw} root-protocol (TLS) lookup clients (half per \
             replica; names drawn from the seeded, from registrations already acknowledged, and \
             never-registered ones) and {rw} registration clients (HTTP PUT of new Atsigns, \
             alternating replicas, 10 s client timeout) run while the harness stops the primary \
             hard (pg_ctl -m immediate) for {down} s and starts it again, {restarts} time(s), and \
             then stops it hard, waits {down} s, promotes the standby and switches the forwarder; \
             {settle} s of load before the first fault and after each recovery (longer, up to a \
             minute, until a registration sent after the recovery is acknowledged). A lookup answer is \
             wrong when it gives an address other than the one registered, or `null` for an Atsign \
             whose registration was acknowledged; refused means no answer (closed, error, or none \
             within 10 s). Lost: acknowledged registrations missing from the promoted standby \
             (read with psql at the end). Resumed: from the database being back (start returned, \
             or promotion and switch done) to the first acknowledged registration sent after it.",
            seeded = plan.seeded,
            lw = plan.lookup_workers,
            rw = plan.registration_workers,
            down = plan.down.as_secs(),
            restarts = plan.restarts,
            settle = plan.settle.as_secs(),
        ),
    );

    let pg = PgPair::start().await?;
    let fwd = Forwarder::start(pg.primary.addr()).await?;
    let db_url =
        directory::fresh_database(&format!("postgres://postgres@{}/postgres", fwd.addr)).await?;
    let database = db_url.rsplit('/').next().unwrap_or("postgres").to_owned();
    let token = directory::write_token(&ctx.dir("outage")?)?;
    let mut replicas = Vec::new();
    for _ in 0..2 {
        replicas.push(
            Directory::spawn(
                &ctx.bin("atdirectory"),
                &ctx.pki,
                &token,
                &db_url,
                &ctx.log,
                &DIRECTORY_FLAGS,
            )
            .await?,
        );
    }
    let roots: Vec<_> = replicas.iter().map(|d| d.root_addr).collect();
    let apis: Vec<_> = replicas.iter().map(|d| d.http_addr).collect();
    let ledger = Arc::new(Ledger::default());
    let client = ctx.pki.at_client()?;
    load::seed(&ledger, &apis, &roots, &client, plan.seeded).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let outage = Arc::new(AtomicBool::new(false));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..plan.lookup_workers {
        workers.spawn(load::lookups(
            w,
            roots[w % roots.len()],
            client.clone(),
            ledger.clone(),
            stop.clone(),
            outage.clone(),
        ));
    }
    for w in 0..plan.registration_workers {
        workers.spawn(load::registrations(
            w,
            apis.clone(),
            ledger.clone(),
            stop.clone(),
        ));
    }

    let faults = async {
        let mut recoveries = Vec::new();
        tokio::time::sleep(plan.settle).await;
        for _ in 0..plan.restarts {
            outage.store(true, Ordering::SeqCst);
            pg.stop_hard(&pg.primary).await?;
            tokio::time::sleep(plan.down).await;
            pg.start_node(&pg.primary).await?;
            outage.store(false, Ordering::SeqCst);
            let at = Instant::now();
            recoveries.push(("restart", at));
            tokio::time::sleep(plan.settle).await;
            until_resumed(&ledger, at).await;
        }
        outage.store(true, Ordering::SeqCst);
        pg.stop_hard(&pg.primary).await?;
        tokio::time::sleep(plan.down).await;
        pg.promote(&pg.standby).await?;
        fwd.switch(pg.standby.addr());
        outage.store(false, Ordering::SeqCst);
        let at = Instant::now();
        recoveries.push(("failover", at));
        tokio::time::sleep(plan.settle).await;
        until_resumed(&ledger, at).await;
        Ok::<_, ReliabilityError>(recoveries)
    }
    .await;
    stop.store(true, Ordering::SeqCst);
    let mut tally = Tally::default();
    while let Some(done) = workers.join_next().await {
        match done {
            Ok(t) => tally.add(t),
            Err(e) => tally.violations.push(format!("a load task failed: {e}")),
        }
    }
    let recoveries = faults?;

    // After the load: every acknowledged registration answers on both replicas and is on the
    // promoted standby.
    load::verify_all(&ledger, &roots, &client, &mut tally).await;
    let rows = pg
        .sql_in(
            &pg.standby,
            &database,
            "SELECT atsign || '|' || host || '|' || port FROM atsigns",
        )
        .await?;
    let lost = ledger.lost(&rows, &mut tally.violations);
    for d in replicas {
        process::stop(d.child, Duration::from_secs(10)).await;
    }
    drop(fwd);
    drop(pg);

    report
        .figure(Figure::count("lookups answered", tally.answered))
        .figure(Figure::count(
            "lookups answered while the database was down",
            tally.answered_in_outage,
        ))
        .figure(Figure::count("lookups refused", tally.refused))
        .figure(Figure::zero("wrong lookup answers", tally.wrong))
        .figure(Figure::zero("cached lookups refused", tally.cached_refused))
        .figure(Figure::count(
            "registrations acknowledged",
            ledger.acked_count() as u64,
        ))
        .figure(Figure::count("registrations refused", tally.reg_refused))
        .figure(Figure::zero(
            "acknowledged registrations lost after the failover",
            lost,
        ));
    for what in ["restart", "failover"] {
        let mut longest: Option<f64> = None;
        for (_, at) in recoveries.iter().filter(|(w, _)| *w == what) {
            match ledger.resumed_after(*at) {
                Some(secs) => longest = Some(longest.map_or(secs, |l: f64| l.max(secs))),
                None => tally
                    .violations
                    .push(format!("registrations never resumed after a {what}")),
            }
        }
        if let Some(secs) = longest {
            report.figure(Figure::new(
                &format!("seconds until registrations resumed after a {what} (longest)"),
                secs,
                "s",
                Must::Nothing,
            ));
        }
    }
    report.violations = tally.violations;
    Ok(report)
}

/// Keeps the load running past the settle time until a registration sent after `at` was
/// acknowledged (or a minute passed), so a slow recovery is measured rather than cut off by the
/// next fault or the end of the run.
async fn until_resumed(ledger: &Ledger, at: Instant) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while ledger.resumed_after(at).is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
