//! Operator at scale: the release `atfleet-operator` process takes N Atsigns to Ready on the
//! upstream control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler), with
//! the node agent reporting pods Ready without running them and the real atDirectory.

use std::path::Path;
use std::time::{Duration, Instant};

use atfleet_cluster::{ControlPlane, FaultProxy, Kubeconfig};
use atfleet_node_agent::NodeAgent;
use futures::{StreamExt, TryStreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Api;
use serde_json::json;

use super::context::Ctx;
use super::directory::Directory;
use super::error::BenchError;
use super::process::{self, Spawned};
use super::report::{Figure, Section, Target};
use super::stats::Summary;
use crate::local::identity;

pub(crate) const NAMESPACE: &str = "fleet";
pub(crate) const SYSTEM_NAMESPACE: &str = "atfleet-system";
const CRDS: [&str; 2] = [
    include_str!("../../../crds/atsign.yaml"),
    include_str!("../../../crds/atserverclass.yaml"),
];
/// Requests per second kube-controller-manager and kube-scheduler may send (upstream's
/// defaults, 20 and 50, would make the StatefulSet controller the bottleneck of the figure).
pub(crate) const CONTROLLER_QPS: u32 = 500;

/// What one run to Ready gives.
struct Outcome {
    seconds: f64,
    /// The operator's requests (counted by the proxy in front of it).
    requests_per_atsign: f64,
    writes_per_atsign: f64,
    /// Every client's requests (`apiserver_request_total`, after − before).
    apiserver_requests_per_atsign: f64,
    peak_rss_mib: f64,
    /// `etcd_mvcc_db_total_size_in_bytes`, after − before.
    etcd_bytes_per_atsign: f64,
    /// CPU seconds (user + system) each process spent from start to the last poll: etcd,
    /// kube-apiserver, kube-controller-manager, kube-scheduler, the operator, and the harness
    /// (the node agent and the proxy live there).
    cpu_seconds: Vec<(String, f64)>,
}

pub async fn run(ctx: &Ctx) -> Result<Vec<Section>, BenchError> {
    let small = ctx.mode.pick(1000, 5);
    let large = match std::env::var("ATFLEET_BENCH_OPERATOR_LARGE") {
        Ok(v) => v.parse().unwrap_or(0),
        Err(_) => ctx.mode.pick(10_000, 0),
    };
    let reps = std::env::var("ATFLEET_BENCH_OPERATOR_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| ctx.mode.pick(3, 1));
    let cap = Duration::from_secs(ctx.mode.pick(600, 180) as u64);
    let large_cap = cap.max(Duration::from_secs(900));
    let mut s = Section::new(
        "operator",
        "Operator at scale",
        format!(
            "The upstream control plane (etcd, kube-apiserver, kube-controller-manager and \
             kube-scheduler of the pinned release, controller and scheduler client QPS \
             {CONTROLLER_QPS}) started fresh for each run, the Atsign and AtServerClass CRDs, the node \
             agent in the harness process in simulation mode (the StatefulSet controller makes the \
             pods, the scheduler binds them, the agent provisions the claims' volumes and reports \
             every pod Ready without running it), the release `atdirectory` on a fresh PostgreSQL \
             database, and the release `atfleet-operator` as its own process with default flags \
             (concurrency 16), authenticated as its ServiceAccount under the RBAC `helm template` \
             renders, through a logging proxy in the harness. Timed: from the first Atsign create (16 \
             creates in flight) until every Atsign has condition Ready=True (polled by listing every \
             second). API requests: the operator's as the proxy counted them, and every client's \
             (controllers, scheduler, node agent, harness included) from the apiserver's own \
             `apiserver_request_total`, scraped before the creates and after the last poll. etcd \
             bytes: `etcd_mvcc_db_total_size_in_bytes` after − before (the database file grows in \
             pages and is never compacted during a run). Peak resident memory: the operator's VmHWM. \
             CPU time: user + system seconds of each process from its start to the last poll \
             (`/proc/<pid>/stat`; the harness holds the node agent and the proxy), the profile of \
             where a run's time goes. \
             {small} Atsigns: {reps} repetition(s){}. Every run is cut off after {} s ({} s for \
             {large}) and then reported as not measured with how many were Ready (a cut-off {small} \
             run also skips the rest of the section).",
            if large > 0 {
                format!("; {large} Atsigns: 1 repetition")
            } else {
                String::new()
            },
            cap.as_secs(),
            large_cap.as_secs(),
        ),
    );
    let Some(url) = ctx.database_url.as_deref() else {
        s.not_measured(
            "operator scale",
            "no PostgreSQL for the atDirectory (DATABASE_URL unset)",
        );
        return Ok(vec![s]);
    };
    let controlplane_bin = atfleet_cluster::binaries().map_err(cluster_err)?;
    let helm = identity::helm().map_err(|e| BenchError::Setup(e.to_string()))?;
    let directory = Directory::start(ctx, url).await?;
    let env = Env {
        directory: &directory,
        controlplane_bin: &controlplane_bin,
        helm: &helm,
    };
    let mut runs = Vec::new();
    for rep in 0..reps {
        match to_ready(ctx, &env, &format!("a{rep}x"), small, cap).await {
            Ok(o) => runs.push(o),
            // A run that cannot finish within the cap says so and ends the section: more of
            // them would only lengthen `make bench` by the cap each.
            Err(BenchError::Timeout(what)) => {
                s.not_measured(
                    &format!("operator: {small} Atsigns to Ready, repetition {}", rep + 1),
                    format!("not all Ready within {} s: {what}", cap.as_secs()),
                );
                break;
            }
            Err(e) => return Err(e),
        }
    }
    push_figures(&mut s, small, &runs);
    if large > 0 && runs.len() < reps {
        s.not_measured(
            &format!("{large} Atsigns to Ready (target ≤ 300 s)"),
            format!("not run: {small} Atsigns did not all get Ready within the cap"),
        );
    } else if large > 0 {
        match to_ready(ctx, &env, "b", large, large_cap).await {
            Ok(o) => push_figures(&mut s, large, &[o]),
            Err(BenchError::Timeout(what)) => s.not_measured(
                &format!("{large} Atsigns to Ready (target ≤ 300 s)"),
                format!("not all Ready within {} s: {what}", large_cap.as_secs()),
            ),
            Err(e) => return Err(e),
        }
    }
    process::stop(directory.child, Duration::from_secs(10)).await;
    Ok(vec![s])
}

struct Env<'a> {
    directory: &'a Directory,
    controlplane_bin: &'a Path,
    helm: &'a Path,
}

fn push_figures(s: &mut Section, n: usize, runs: &[Outcome]) {
    let col = |f: fn(&Outcome) -> f64| Summary::of(&runs.iter().map(f).collect::<Vec<_>>());
    let target_secs = if n >= 10_000 {
        Target::AtMost { value: 300.0 }
    } else {
        Target::None
    };
    let mib = if n >= 10_000 {
        Target::AtMost { value: 256.0 }
    } else {
        Target::None
    };
    let mut push = |name: String, unit: &str, f: fn(&Outcome) -> f64, target: Target| {
        if let Some(v) = col(f) {
            s.figures.push(Figure::new(&name, unit, v, target));
        }
    };
    push(
        format!("operator: {n} Atsigns to Ready"),
        "s",
        |o| o.seconds,
        target_secs,
    );
    push(
        format!("operator: API requests per Atsign ({n})"),
        "req",
        |o| o.requests_per_atsign,
        Target::None,
    );
    push(
        format!("operator: API writes per Atsign ({n})"),
        "req",
        |o| o.writes_per_atsign,
        Target::None,
    );
    push(
        format!("operator: apiserver requests per Atsign, all clients ({n})"),
        "req",
        |o| o.apiserver_requests_per_atsign,
        Target::None,
    );
    push(
        format!("operator: etcd database growth per Atsign ({n})"),
        "B",
        |o| o.etcd_bytes_per_atsign,
        Target::None,
    );
    push(
        format!("operator: peak resident memory ({n})"),
        "MiB",
        |o| o.peak_rss_mib,
        mib,
    );
    if let Some(first) = runs.first() {
        for (i, (name, _)) in first.cpu_seconds.iter().enumerate() {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|o| o.cpu_seconds.get(i).map(|(_, v)| *v))
                .collect();
            if let Some(v) = Summary::of(&values) {
                s.figures.push(Figure::new(
                    &format!("operator: CPU time of {name} ({n})"),
                    "s",
                    v,
                    Target::None,
                ));
            }
        }
    }
}

fn cluster_err(e: atfleet_cluster::ClusterError) -> BenchError {
    BenchError::Setup(format!("control plane: {e}"))
}

fn kube_err(e: kube::Error) -> BenchError {
    BenchError::Setup(format!("kubernetes API: {e}"))
}

/// One run: a fresh control plane, node agent and operator; `n` Atsigns named `<prefix>00000`….
async fn to_ready(
    ctx: &Ctx,
    env: &Env<'_>,
    prefix: &str,
    n: usize,
    cap: Duration,
) -> Result<Outcome, BenchError> {
    let mut opts = atfleet_cluster::Options::new(
        ctx.work.path().join(format!("cp-{prefix}")),
        env.controlplane_bin,
    );
    opts.client_qps = CONTROLLER_QPS;
    let cp = ControlPlane::start(opts).await.map_err(cluster_err)?;
    let result = measure(ctx, env, &cp, prefix, n, cap).await;
    cp.shutdown().await;
    result
}

async fn measure(
    ctx: &Ctx,
    env: &Env<'_>,
    cp: &ControlPlane,
    prefix: &str,
    n: usize,
    cap: Duration,
) -> Result<Outcome, BenchError> {
    let admin = cp.client().await.map_err(cluster_err)?;
    install(&admin).await?;
    let mut agent_config =
        atfleet_node_agent::Config::simulate(ctx.work.path().join(format!("node-{prefix}")));
    agent_config.max_pods = u32::try_from(n + 1000).unwrap_or(u32::MAX);
    let agent = NodeAgent::start(admin.clone(), agent_config)
        .await
        .map_err(|e| BenchError::Setup(format!("node agent: {e}")))?;
    let id = identity::chart_identity(&admin, env.helm, "atfleet", SYSTEM_NAMESPACE, 86_400)
        .await
        .map_err(|e| BenchError::Setup(format!("the operator's identity: {e}")))?;
    let upstream = Kubeconfig::token(&cp.server, &cp.ca_cert, &id.token)
        .client()
        .await
        .map_err(cluster_err)?;
    let proxy = FaultProxy::start(upstream).await.map_err(cluster_err)?;
    let kubeconfig = ctx
        .work
        .path()
        .join(format!("operator-{prefix}.kubeconfig"));
    proxy.write_kubeconfig(&kubeconfig).map_err(cluster_err)?;

    let cmd = operator_command(&ctx.bin("atfleet-operator"), &kubeconfig, env.directory);
    let operator = Spawned::start(cmd, "atfleet-operator", &ctx.log)?;
    let pid = operator
        .pid()
        .ok_or_else(|| BenchError::Setup("atfleet-operator exited".into()))?;
    let operator = operator.drain_stdout();

    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("atfleet.dev", "v1alpha1", "Atsign"));
    let atsigns: Api<DynamicObject> = Api::namespaced_with(admin.clone(), NAMESPACE, &ar);
    let requests_before = apiserver_requests(&admin).await?;
    let etcd_before = etcd_db_size(&cp.etcd_url).await?;
    let proxied_before = proxy.log().len();
    let started = Instant::now();
    let created = futures::stream::iter(0..n)
        .map(|i| {
            let atsigns = atsigns.clone();
            let name = format!("{prefix}{i:05}");
            async move {
                let obj: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "atfleet.dev/v1alpha1", "kind": "Atsign",
                    "metadata": {"name": name, "namespace": NAMESPACE},
                    "spec": {"atSign": format!("@{name}")},
                }))
                .map_err(|e| BenchError::Setup(format!("Atsign object: {e}")))?;
                atsigns
                    .create(&PostParams::default(), &obj)
                    .await
                    .map_err(kube_err)
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await;
    let result = match created {
        Err(e) => Err(e),
        Ok(_) => loop {
            let ready = match atsigns.list(&ListParams::default()).await {
                Ok(list) => list.items.iter().filter(|a| is_ready(a)).count(),
                Err(e) => break Err(kube_err(e)),
            };
            if ready == n {
                break Ok(started.elapsed());
            }
            if started.elapsed() > cap {
                break Err(BenchError::Timeout(format!("{ready} of {n} Atsigns Ready")));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        },
    };
    let requests_after = apiserver_requests(&admin).await;
    let etcd_after = etcd_db_size(&cp.etcd_url).await;
    let log = proxy.log();
    let ours = &log[proxied_before.min(log.len())..];
    let requests = ours.len();
    let writes = ours.iter().filter(|l| l.is_write()).count();
    let peak = process::memory_kib(pid).map(|(_, hwm)| hwm as f64 / 1024.0);
    let mut cpu_seconds = control_plane_cpu(&cp.state_dir);
    cpu_seconds.push(("atfleet-operator".into(), cpu_of(pid).unwrap_or(f64::NAN)));
    cpu_seconds.push((
        "the harness (node agent, proxy)".into(),
        cpu_of(std::process::id()).unwrap_or(f64::NAN),
    ));
    process::stop(operator, Duration::from_secs(10)).await;
    agent.shutdown().await;
    let elapsed = result?;
    let per = |v: f64| v / n as f64;
    Ok(Outcome {
        seconds: elapsed.as_secs_f64(),
        requests_per_atsign: per(requests as f64),
        writes_per_atsign: per(writes as f64),
        apiserver_requests_per_atsign: per(requests_after? - requests_before),
        peak_rss_mib: peak.unwrap_or(f64::NAN),
        etcd_bytes_per_atsign: per(etcd_after? - etcd_before),
        cpu_seconds,
    })
}

/// The operator with default flags, through `kubeconfig`, registering in `directory`.
pub(crate) fn operator_command(
    bin: &Path,
    kubeconfig: &Path,
    directory: &Directory,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "warn")
        .arg("--directory-url")
        .arg(format!("http://{}", directory.http_addr))
        .arg("--directory-token-file")
        .arg(&directory.token_file)
        .args([
            "--http-listen",
            "127.0.0.1:0",
            "--namespace",
            SYSTEM_NAMESPACE,
        ]);
    cmd
}

/// User + system CPU seconds of a process (`/proc/<pid>/stat`, in USER_HZ = 100 ticks).
fn cpu_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// CPU seconds of the four control-plane processes, found by their state directory in their
/// command lines.
fn control_plane_cpu(state_dir: &Path) -> Vec<(String, f64)> {
    let needle = state_dir.display().to_string();
    let mut found: Vec<(String, f64)> = Vec::new();
    let names = [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ];
    let entries = std::fs::read_dir("/proc")
        .map(|rd| rd.flatten().collect::<Vec<_>>())
        .unwrap_or_default();
    for name in names {
        let cpu = entries.iter().find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let program = Path::new(args.first()?).file_name()?.to_str()?.to_owned();
            (program == name && args.iter().any(|a| a.contains(&needle)))
                .then(|| cpu_of(pid))
                .flatten()
        });
        found.push((name.to_owned(), cpu.unwrap_or(f64::NAN)));
    }
    found
}

pub(crate) fn is_ready(a: &DynamicObject) -> bool {
    a.data["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// The sum of every series of `name` in a Prometheus text exposition.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `apiserver_request_total` over every label set, from the apiserver's `/metrics`.
async fn apiserver_requests(admin: &kube::Client) -> Result<f64, BenchError> {
    let request = hyper::Request::get("/metrics")
        .body(Vec::new())
        .map_err(|e| BenchError::Setup(format!("metrics request: {e}")))?;
    let text = admin.request_text(request).await.map_err(kube_err)?;
    Ok(metric_sum(&text, "apiserver_request_total"))
}

/// etcd's `etcd_mvcc_db_total_size_in_bytes`.
async fn etcd_db_size(etcd_url: &str) -> Result<f64, BenchError> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: hyper::Uri = format!("{etcd_url}/metrics")
        .parse()
        .map_err(|e| BenchError::Setup(format!("{etcd_url}: {e}")))?;
    let response = client
        .get(uri)
        .await
        .map_err(|e| BenchError::Setup(format!("etcd metrics: {e}")))?;
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| BenchError::Setup(format!("etcd metrics: {e}")))?
        .to_bytes();
    Ok(metric_sum(
        &String::from_utf8_lossy(&body),
        "etcd_mvcc_db_total_size_in_bytes",
    ))
}

/// The CRDs (Established) and the two namespaces.
pub(crate) async fn install(client: &kube::Client) -> Result<(), BenchError> {
    let pp = PatchParams::apply("atfleet-bench").force();
    for doc in CRDS {
        let crd: CustomResourceDefinition = serde_yaml::from_str(doc)
            .map_err(|e| BenchError::Setup(format!("CRD manifest: {e}")))?;
        atfleet_cluster::apply_crd(client, &crd, "atfleet-bench", Duration::from_secs(60))
            .await
            .map_err(cluster_err)?;
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [SYSTEM_NAMESPACE, NAMESPACE] {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        namespaces
            .patch(ns, &pp, &Patch::Apply(&obj))
            .await
            .map_err(kube_err)?;
    }
    Ok(())
}
