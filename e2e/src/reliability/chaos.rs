//! Operator chaos on the upstream control plane: a rollout of many Atsigns and their deletion while
//! the operator reaches the apiserver through a proxy that fails a tenth of its writes, and the
//! harness SIGKILLs and restarts it at random moments. The promises: the rollout converges, no
//! Atsign ends up with two of a child, and deleting every Atsign leaves nothing registered in the
//! atDirectory and no children in the namespace.

mod children;
mod operator_proc;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use atfleet_cluster::{ControlPlane, FaultConfig, FaultProxy, Kubeconfig};
use atfleet_node_agent::NodeAgent;
use futures::{StreamExt, TryStreamExt};
use kube::api::{DeleteParams, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Api;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::time::Instant;

use self::operator_proc::OperatorProc;
use super::context::Ctx;
use super::error::ReliabilityError;
use super::options::Scale;
use super::report::{Figure, Must, SectionReport};
use crate::bench::directory::{self, Directory};
use crate::bench::operator::{install, is_ready, CONTROLLER_QPS, NAMESPACE, SYSTEM_NAMESPACE};
use crate::bench::process;
use crate::local::identity;
use crate::local::postgres::Postgres;

/// About one write in ten fails (500 or 409), one request in fifty is throttled (429), and every
/// watch is cut after 30 s, as an apiserver's timeout would.
fn faults() -> FaultConfig {
    FaultConfig {
        error_rate: 0.06,
        conflict_rate: 0.04,
        throttle_rate: 0.02,
        cut_watches_after: Some(Duration::from_secs(30)),
        latency: Duration::ZERO,
        only_paths_containing: None,
    }
}

struct Plan {
    atsigns: usize,
    /// Seconds between kills, drawn uniformly.
    kill_every: (u64, u64),
    /// Longest a phase (rollout, deletion) may take.
    cap: Duration,
    /// The operator's leader lease (the chart's 15 s; the shortest allowed in a short run).
    lease_seconds: u64,
    seed: u64,
}

impl Plan {
    fn of(ctx: &Ctx) -> Plan {
        Plan {
            atsigns: ctx.scale.pick(500, 20),
            kill_every: match ctx.scale {
                // Each restart first waits out the 15 s lease its killed predecessor held: kills
                // every 10–30 s left the operator leading a quarter of the time (194 of 500 Ready
                // after 9.5 min and 28 processes), so the full run kills every 30–60 s.
                Scale::Full => (30, 60),
                Scale::Short => (4, 8),
            },
            lease_seconds: ctx.scale.pick(15, 3) as u64,
            cap: Duration::from_secs(ctx.scale.pick(1500, 400) as u64),
            seed: std::env::var("ATFLEET_RELIABILITY_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| rand::thread_rng().gen()),
        }
    }
}

fn setup(what: &str) -> impl FnOnce(String) -> ReliabilityError + '_ {
    move |message| ReliabilityError::Setup(format!("{what}: {message}"))
}

fn kube_err(e: kube::Error) -> ReliabilityError {
    ReliabilityError::Setup(format!("kubernetes API: {e}"))
}

pub async fn run(ctx: &Ctx) -> Result<SectionReport, ReliabilityError> {
    let plan = Plan::of(ctx);
    let f = faults();
    let mut report = SectionReport::new(
        "chaos",
        "Operator chaos",
        format!(
            "The upstream control plane (etcd, kube-apiserver, kube-controller-manager, \
             kube-scheduler; controller QPS {CONTROLLER_QPS}), the node agent in simulation mode \
             (pods scheduled and reported Ready without processes), `atdirectory` on a \
             fresh PostgreSQL, and `atfleet-operator` (one replica, default flags plus leader election as the chart enables it, lease {lease} s, a new identity per process; both from --bin-dir) as \
             the chart's ServiceAccount through a fault proxy: {e:.0}% of writes fail with 500 and \
             {c:.0}% with 409, {t:.0}% of all requests get 429, watches are cut after 30 s. \
             {n} Atsigns (storage.retention Delete) are created 16 at a time and then, once all \
             are Ready, deleted; through both phases the harness SIGKILLs the operator and starts \
             it again every {k0}–{k1} s (uniform, seed {seed}), and at the first sign of progress \
             in each phase. Converged: every Atsign Ready=True (polled each second). Duplicates: \
             StatefulSets and Services controlled by one Atsign beyond one each. After deletion: \
             atSigns still listed by the directory's API, and StatefulSets, Services, Secrets, \
             PVCs and Pods still in the namespace once garbage collection had up to 120 s.",
            e = f.error_rate * 100.0,
            c = f.conflict_rate * 100.0,
            t = f.throttle_rate * 100.0,
            n = plan.atsigns,
            k0 = plan.kill_every.0,
            k1 = plan.kill_every.1,
            seed = plan.seed,
            lease = plan.lease_seconds,
        ),
    );
    let controlplane_bin =
        atfleet_cluster::binaries().map_err(|e| setup("control plane")(e.to_string()))?;
    let helm = identity::helm().map_err(|e| setup("helm")(e.to_string()))?;
    // Under /tmp, which the `postgres` user can reach (the run's scratch directory is root's).
    let pg_dir = tempfile::Builder::new()
        .prefix("atfleet-chaos-pg-")
        .tempdir()
        .map_err(ReliabilityError::io(std::env::temp_dir()))?;
    let pg_path = pg_dir.path().to_path_buf();
    let pg = tokio::task::spawn_blocking(move || Postgres::start_cluster(&pg_path))
        .await
        .map_err(|e| setup("postgres")(e.to_string()))?
        .map_err(|e| setup("postgres")(e.to_string()))?;
    let db_url = directory::fresh_database(&pg.url).await?;
    let token = directory::write_token(&ctx.dir("chaos")?)?;
    let dir = Directory::spawn(
        &ctx.bin("atdirectory"),
        &ctx.pki,
        &token,
        &db_url,
        &ctx.log,
        &[],
    )
    .await?;
    let mut opts =
        atfleet_cluster::Options::new(ctx.work.path().join("chaos-cp"), &controlplane_bin);
    opts.client_qps = CONTROLLER_QPS;
    let result = match ControlPlane::start(opts).await {
        Ok(cp) => {
            let r = chaos(ctx, &plan, &cp, &dir, &helm, &mut report).await;
            cp.shutdown().await;
            r
        }
        Err(e) => Err(setup("control plane")(e.to_string())),
    };
    process::stop(dir.child, Duration::from_secs(10)).await;
    drop(pg);
    drop(pg_dir);
    result.map(|()| report)
}

/// Everything between a running control plane and the figures.
async fn chaos(
    ctx: &Ctx,
    plan: &Plan,
    cp: &ControlPlane,
    dir: &Directory,
    helm: &Path,
    report: &mut SectionReport,
) -> Result<(), ReliabilityError> {
    let admin = cp
        .client()
        .await
        .map_err(|e| setup("control plane")(e.to_string()))?;
    install(&admin).await?;
    let mut agent_config = atfleet_node_agent::Config::simulate(ctx.work.path().join("chaos-node"));
    agent_config.max_pods = u32::try_from(plan.atsigns + 1000).unwrap_or(u32::MAX);
    let agent = NodeAgent::start(admin.clone(), agent_config)
        .await
        .map_err(|e| setup("node agent")(e.to_string()))?;
    let id = identity::chart_identity(&admin, helm, "atfleet", SYSTEM_NAMESPACE, 86_400)
        .await
        .map_err(|e| setup("the operator's identity")(e.to_string()))?;
    let upstream = Kubeconfig::token(&cp.server, &cp.ca_cert, &id.token)
        .client()
        .await
        .map_err(|e| setup("the operator's client")(e.to_string()))?;
    let proxy = FaultProxy::start(upstream)
        .await
        .map_err(|e| setup("fault proxy")(e.to_string()))?;
    let kubeconfig = ctx.work.path().join("chaos-operator.kubeconfig");
    proxy
        .write_kubeconfig(&kubeconfig)
        .map_err(|e| setup("fault proxy")(e.to_string()))?;
    proxy.set(faults());
    let mut operator = OperatorProc::start(
        ctx.bin("atfleet-operator"),
        kubeconfig,
        dir,
        PathBuf::from(&ctx.log),
        plan.lease_seconds,
    )?;
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let result = phases(plan, &admin, dir, &mut operator, &mut rng, report).await;
    let exits = operator.exits.clone();
    let kills = operator.kills;
    operator.stop().await;
    agent.shutdown().await;
    report
        .figure(Figure::new(
            "operator kills (SIGKILL)",
            kills as f64,
            "",
            Must::AtLeast { value: 1.0 },
        ))
        .figure(Figure::count(
            "API requests through the fault proxy",
            proxy.log().len() as u64,
        ))
        .figure(Figure::count(
            "API faults injected",
            proxy.injected() as u64,
        ))
        .figure(Figure::zero(
            "operator exits the harness did not cause",
            exits.len() as u64,
        ));
    report.violations.extend(exits);
    match result {
        // Not converging is a broken promise, reported with the figures gathered so far.
        Err(ReliabilityError::Timeout(what)) => {
            report.violations.push(format!("did not converge: {what}"));
            Ok(())
        }
        other => other,
    }
}

async fn phases(
    plan: &Plan,
    admin: &kube::Client,
    dir: &Directory,
    operator: &mut OperatorProc<'_>,
    rng: &mut StdRng,
    report: &mut SectionReport,
) -> Result<(), ReliabilityError> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("atfleet.dev", "v1alpha1", "Atsign"));
    let atsigns: Api<DynamicObject> = Api::namespaced_with(admin.clone(), NAMESPACE, &ar);
    let n = plan.atsigns;
    report.figure(Figure::count("Atsigns", n as u64));
    let names: Vec<String> = (0..n).map(|i| format!("c{i:05}")).collect();

    // Rollout.
    let started = Instant::now();
    futures::stream::iter(names.iter())
        .map(|name| {
            let atsigns = atsigns.clone();
            async move {
                let obj: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "atfleet.dev/v1alpha1", "kind": "Atsign",
                    "metadata": {"name": name, "namespace": NAMESPACE},
                    "spec": {"atSign": format!("@{name}"), "storage": {"retention": "Delete"}},
                }))
                .map_err(|e| setup("Atsign object")(e.to_string()))?;
                atsigns
                    .create(&PostParams::default(), &obj)
                    .await
                    .map_err(kube_err)
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    let ready = |list: &[DynamicObject]| list.iter().filter(|a| is_ready(a)).count();
    drive(plan, operator, rng, "every Atsign Ready", || async {
        let list = atsigns
            .list(&ListParams::default())
            .await
            .map_err(kube_err)?;
        Ok(ready(&list.items))
    })
    .await?;
    report.figure(Figure::new(
        "seconds to converge (every Atsign Ready)",
        started.elapsed().as_secs_f64(),
        "s",
        Must::Nothing,
    ));
    let list = atsigns
        .list(&ListParams::default())
        .await
        .map_err(kube_err)?
        .items;
    let (extra, problems) = children::duplicates(admin, NAMESPACE, &list).await?;
    report.figure(Figure::zero("duplicate children", extra));
    report.violations.extend(problems);
    let registered: BTreeSet<String> = directory::registered(dir.http_addr)
        .await?
        .into_iter()
        .collect();
    let unregistered: Vec<&String> = names
        .iter()
        .filter(|n| !registered.contains(&format!("@{n}")))
        .collect();
    report.figure(Figure::zero(
        "Ready Atsigns not registered in the atDirectory",
        unregistered.len() as u64,
    ));
    if !unregistered.is_empty() {
        report.violations.push(format!(
            "Ready but not registered: {}",
            first_few(unregistered.iter().map(|s| s.as_str()))
        ));
    }

    // Deletion, with the same chaos.
    let started = Instant::now();
    futures::stream::iter(names.iter())
        .map(|name| {
            let atsigns = atsigns.clone();
            async move {
                atsigns
                    .delete(name, &DeleteParams::default())
                    .await
                    .map(|_| ())
                    .map_err(kube_err)
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    drive(plan, operator, rng, "every Atsign deleted", || async {
        let left = atsigns
            .list(&ListParams::default())
            .await
            .map_err(kube_err)?
            .items
            .len();
        Ok(n.saturating_sub(left))
    })
    .await?;
    report.figure(Figure::new(
        "seconds until every Atsign was deleted",
        started.elapsed().as_secs_f64(),
        "s",
        Must::Nothing,
    ));
    let still: Vec<String> = directory::registered(dir.http_addr).await?;
    report.figure(Figure::zero(
        "atSigns left registered after deletion",
        still.len() as u64,
    ));
    if !still.is_empty() {
        report.violations.push(format!(
            "left registered after deletion: {}",
            first_few(still.iter().map(|s| s.as_str()))
        ));
    }
    // The Services go by garbage collection, which runs after the Atsign is gone.
    let deadline = Instant::now() + Duration::from_secs(120);
    let left = loop {
        let left = children::remaining(admin, NAMESPACE).await?;
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    report.figure(Figure::zero(
        "children left after deletion",
        left.len() as u64,
    ));
    if !left.is_empty() {
        report.violations.push(format!(
            "left after deletion: {}",
            first_few(left.iter().map(|s| s.as_str()))
        ));
    }
    Ok(())
}

/// Polls `done()` (how many of the Atsigns are through the phase) each second until all are,
/// killing and restarting the operator at random moments and once at the first sign of progress.
async fn drive<F, Fut>(
    plan: &Plan,
    operator: &mut OperatorProc<'_>,
    rng: &mut StdRng,
    what: &str,
    mut done: F,
) -> Result<(), ReliabilityError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, ReliabilityError>>,
{
    let n = plan.atsigns;
    let started = Instant::now();
    let mut killed_here = false;
    let next = |rng: &mut StdRng| {
        Instant::now() + Duration::from_secs(rng.gen_range(plan.kill_every.0..=plan.kill_every.1))
    };
    let mut next_kill = next(rng);
    loop {
        let through = done().await?;
        if through >= n {
            return Ok(());
        }
        let progress = through > 0;
        if (progress && !killed_here) || Instant::now() >= next_kill {
            operator.kill_and_restart().await?;
            killed_here = true;
            next_kill = next(rng);
        }
        operator.check_alive()?;
        if started.elapsed() > plan.cap {
            return Err(ReliabilityError::Timeout(format!(
                "{what}: {through} of {n} after {} s",
                plan.cap.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn first_few<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<&str> = items.collect();
    let shown: Vec<&str> = all.iter().take(10).copied().collect();
    if all.len() > shown.len() {
        format!("{} … ({} in all)", shown.join(", "), all.len())
    } else {
        shown.join(", ")
    }
}
