//! Operator at scale: the release `atfleet-operator` process takes N Atsigns to Ready against
//! kubesim, with the process kubelet in readiness-simulation mode and the real atDirectory.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Api;
use serde_json::json;

use super::directory::Directory;
use super::process::{self, Spawned};
use super::report::{Figure, Section, Target};
use super::stats::Summary;
use super::{BenchError, Ctx};
use crate::kubesim::{self, Server};
// The node agent, under its old names; it needs the upstream control plane (no kubesim).
use atfleet_node_agent::{self as kubelet, NodeAgent as Kubelet};

const NAMESPACE: &str = "fleet";
const SYSTEM_NAMESPACE: &str = "atfleet-system";
const CRDS: [&str; 2] = [
    include_str!("../../../crds/atsign.yaml"),
    include_str!("../../../crds/atserverclass.yaml"),
];

/// What one run to Ready gives.
struct Outcome {
    seconds: f64,
    requests_per_atsign: f64,
    writes_per_atsign: f64,
    peak_rss_mib: f64,
}

pub async fn run(ctx: &Ctx) -> Result<Vec<Section>, BenchError> {
    let small = ctx.mode.pick(1000, 5);
    let large = ctx.mode.pick(10_000, 0);
    let reps = ctx.mode.pick(3, 1);
    let cap = Duration::from_secs(ctx.mode.pick(420, 120) as u64);
    let mut s = Section::new(
        "operator",
        "Operator at scale",
        format!(
            "kubesim (in the harness process, watch history 200,000 events) with the Atsign and \
             AtServerClass CRDs, the process kubelet in readiness-simulation mode (it plays the \
             StatefulSet controller and reports every pod Ready at once, no processes), the release \
             `atdirectory` on a fresh PostgreSQL database, and the release `atfleet-operator` as its own \
             process with default flags (concurrency 16). Timed: from the first Atsign create (16 creates \
             in flight) until every Atsign has condition Ready=True (polled by listing every second). \
             API requests: kubesim's audit log entries whose user agent is the operator's, drained at \
             each poll (an entry recorded between a read and the clear is lost, so this is a lower \
             bound). Peak resident memory: the operator's VmHWM. {small} Atsigns: {reps} repetitions, \
             each with a fresh kubesim and operator; {large} Atsigns: 1 repetition. Every run is cut \
             off after {} s and then reported as not measured with how many were Ready (a cut-off \
             {small} run also skips the rest of the section).",
            cap.as_secs()
        ),
    );
    let Some(url) = ctx.database_url.as_deref() else {
        s.not_measured(
            "operator scale",
            "no PostgreSQL for the atDirectory (DATABASE_URL unset)",
        );
        return Ok(vec![s]);
    };
    let directory = Directory::start(ctx, url).await?;
    let mut runs = Vec::new();
    for rep in 0..reps {
        match to_ready(ctx, &directory, &format!("a{rep}x"), small, cap).await {
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
        match to_ready(ctx, &directory, "b", large, cap).await {
            Ok(o) => push_figures(&mut s, large, &[o]),
            Err(BenchError::Timeout(what)) => s.not_measured(
                &format!("{large} Atsigns to Ready (target ≤ 300 s)"),
                format!("not all Ready within {} s: {what}", cap.as_secs()),
            ),
            Err(e) => return Err(e),
        }
    }
    process::stop(directory.child, Duration::from_secs(10)).await;
    Ok(vec![s])
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
    if let Some(v) = col(|o| o.seconds) {
        s.figures.push(Figure::new(
            &format!("operator: {n} Atsigns to Ready"),
            "s",
            v,
            target_secs,
        ));
    }
    if let Some(v) = col(|o| o.requests_per_atsign) {
        s.figures.push(Figure::new(
            &format!("operator: API requests per Atsign ({n})"),
            "req",
            v,
            Target::None,
        ));
    }
    if let Some(v) = col(|o| o.writes_per_atsign) {
        s.figures.push(Figure::new(
            &format!("operator: API writes per Atsign ({n})"),
            "req",
            v,
            Target::None,
        ));
    }
    if let Some(v) = col(|o| o.peak_rss_mib) {
        s.figures.push(Figure::new(
            &format!("operator: peak resident memory ({n})"),
            "MiB",
            v,
            mib,
        ));
    }
}

fn sim_err(e: kubesim::Error) -> BenchError {
    BenchError::Setup(format!("kubesim: {e}"))
}

fn kube_err(e: kube::Error) -> BenchError {
    BenchError::Setup(format!("kubernetes API: {e}"))
}

/// One run: fresh kubesim, kubelet and operator; `n` Atsigns named `<prefix>00000`….
async fn to_ready(
    ctx: &Ctx,
    directory: &Directory,
    prefix: &str,
    n: usize,
    cap: Duration,
) -> Result<Outcome, BenchError> {
    let sim = Server::start(kubesim::Config {
        history_limit: 200_000,
        ..kubesim::Config::default()
    })
    .await
    .map_err(sim_err)?;
    let client = sim.client().map_err(sim_err)?;
    install(&client).await?;
    let kubelet = Kubelet::start(
        client.clone(),
        kubelet::Config::simulate(ctx.work.path().join(format!("node-{prefix}"))),
    )
    .await
    .map_err(|e| BenchError::Setup(format!("node agent: {e}")))?;
    let kubeconfig = ctx.work.path().join(format!("kubeconfig-{prefix}"));
    sim.write_kubeconfig(&kubeconfig).map_err(sim_err)?;
    let mut cmd = tokio::process::Command::new(ctx.bin("atfleet-operator"));
    cmd.env("KUBECONFIG", &kubeconfig)
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
    let operator = Spawned::start(cmd, "atfleet-operator", &ctx.log)?;
    let pid = operator
        .pid()
        .ok_or_else(|| BenchError::Setup("atfleet-operator exited".into()))?;
    let operator = operator.drain_stdout();

    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("atfleet.dev", "v1alpha1", "Atsign"));
    let atsigns: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &ar);
    let started = Instant::now();
    futures::stream::iter(0..n)
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
        .await?;
    let ours = |e: &kubesim::AuditEvent| e.user_agent.starts_with("atfleet-operator");
    let (mut requests, mut writes) = (0usize, 0usize);
    let mut drain = || {
        let events = sim.audit().events();
        sim.audit().clear();
        for e in events.iter().filter(|e| ours(e)) {
            requests += 1;
            if matches!(e.verb.as_str(), "create" | "update" | "patch" | "delete") {
                writes += 1;
            }
        }
    };
    let result = loop {
        drain();
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
    };
    drain();
    let peak = process::memory_kib(pid).map(|(_, hwm)| hwm as f64 / 1024.0);
    process::stop(operator, Duration::from_secs(10)).await;
    kubelet.shutdown().await;
    sim.shutdown().await;
    let elapsed = result?;
    Ok(Outcome {
        seconds: elapsed.as_secs_f64(),
        requests_per_atsign: requests as f64 / n as f64,
        writes_per_atsign: writes as f64 / n as f64,
        peak_rss_mib: peak.unwrap_or(f64::NAN),
    })
}

fn is_ready(a: &DynamicObject) -> bool {
    a.data["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// The CRDs and the two namespaces.
async fn install(client: &kube::Client) -> Result<(), BenchError> {
    let pp = PatchParams::apply("atfleet-bench").force();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for doc in CRDS {
        let crd: CustomResourceDefinition = serde_yaml::from_str(doc)
            .map_err(|e| BenchError::Setup(format!("CRD manifest: {e}")))?;
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.patch(&name, &pp, &Patch::Apply(&crd))
            .await
            .map_err(kube_err)?;
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
