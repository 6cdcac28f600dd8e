//! Issue 14, acceptance 3 (second half): a rotation of the built-in CA with no failed
//! server-to-server handshake, measured on REAL atServers (the node agent runs them as processes
//! on the real control plane) that resolve each other through the real atDirectory.
//!
//! Every Atsign publishes `public:probe@<it>`; a prober per Atsign, authenticated on its own
//! atServer with CRAM, keeps asking `plookup:bypassCache:true:probe@<peer>` for the next peers in
//! turn. That makes its atServer open a fresh mutual-TLS connection to the peer's atServer every
//! time (plookup with bypassCache never answers from the cache and never pools the connection),
//! presenting its own leaf as the client certificate and verifying the peer's with the trust bundle
//! it started on. Meanwhile the CA is rotated (Begin, Promote, Retire) until the CA Secret holds
//! neither a next nor a previous CA, every leaf is issued by the new CA, and every atServer serves
//! that leaf, and every pod runs its final template. Each failed probe is classified: a TLS
//! handshake or certificate verification failure (must be none), or the peer being unreachable
//! while its pod rolls (counted and reported, with the longest time each peer went without a
//! successful probe).
//!
//! The last Atsign's class rolls `OnDelete`, and the test replaces its pod by hand only after the
//! rest of the fleet has rolled and some probes met it in that state. Before the fix in
//! `ca_rotation.rs`, Retire came as soon as the TLS Secrets held leaves of the new CA, while the
//! running atServers still served the old ones (the node agent, like a kubelet, refreshes the
//! Secret volume, but the atServer reloads its leaf only at its next 30 s check): every pod rolled
//! onto the bundle without the old CA then refused its peers (`BadSignature`, `DecryptError`), in
//! this test every time (checked again with the refreshing node agent: 23 TLS failures of 386
//! probes with the fix reverted).
//!
//! Here rather than in `e2e/` because it needs what `tests/common` gives: the operator in-process
//! with a 2 s resync, as the chart's ServiceAccount under the RBAC the chart renders.
//!
//! The short run is part of `make test`; the acceptance run (`ATFLEET_FLEET_SIZE`, default 100) is
//! ignored by default:
//!
//!   scripts/with-postgres -- scripts/with-controlplane -- cargo nextest run -p atfleet-operator \
//!     --test ca_rotation_fleet --run-ignored ignored-only --no-capture

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use at_protocol::client::{AtConnection, ClientConfig, TlsOptions};
use at_protocol::{AtSign, Reply};
use atfleet_operator::crd::AtServerClass;
use atfleet_operator::directory::DirectoryClient;
use atfleet_test_support::bins::workspace_bin;
use atfleet_test_support::pki::TestCa;
use clap::Parser;
use common::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::Api;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// What a probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Success,
    /// The TLS handshake failed on a certificate: what a rotation must never cause.
    Tls,
    /// The peer's atServer could not be reached (its pod rolling).
    Unreachable,
    /// Anything else (reported with its message).
    Other,
}

/// The rotation's progress as the CA Secret shows it.
const PHASES: [&str; 5] = [
    "before",
    "Begin (new CA trusted, pods rolling)",
    "Promote (new CA issuing, leaves re-issued)",
    "Retire (old CA dropped from the bundles, pods rolling)",
    "complete",
];

struct Probe {
    at: Duration,
    from: usize,
    to: usize,
    kind: Kind,
    phase: u8,
    detail: String,
}

/// Sorts a failed plookup's error text. The atServer passes the cause of a failed peer
/// connection through in its error message (rustls names certificate problems and alerts).
fn classify(message: &str) -> Kind {
    let m = message.to_ascii_lowercase();
    // rustls's words for a certificate it refused or an alert the other side sent about ours.
    let tls = [
        "certificate",
        "unknownissuer",
        "unknown ca",
        "unknownca",
        "alert",
        "notvalidforname",
        "badsignature",
    ];
    // The forwarder closes a connection when no pod is ready; a stopping server drops it.
    let unreachable = [
        "connection refused",
        "connection reset",
        "broken pipe",
        "eof",
        "close_notify",
        "closed by server",
        "timed out",
        "timeout",
    ];
    if tls.iter().any(|t| m.contains(t)) {
        Kind::Tls
    } else if unreachable.iter().any(|t| m.contains(t)) {
        Kind::Unreachable
    } else {
        Kind::Other
    }
}

fn probe_value(name: &str) -> String {
    format!("probe-of-{name}")
}

/// One Atsign as the probers reach it.
struct Member {
    name: String,
    atsign: AtSign,
    endpoint: (String, u16),
    cram: String,
}

struct Probers {
    members: Vec<Member>,
    /// Every CA the probe clients trust (the old and, once it appears, the new one): the
    /// clients' own trust is not what is measured.
    trust: RwLock<String>,
    phase: AtomicU8,
    started: Instant,
    pace: Duration,
    probes: Mutex<Vec<Probe>>,
    /// Per Atsign: how often and how long its prober could not reach its own atServer.
    own_outages: Mutex<Vec<(usize, Duration)>>,
    stop: CancellationToken,
}

impl Probers {
    async fn connect_owner(&self, i: usize) -> Result<AtConnection, String> {
        let m = &self.members[i];
        let pem = self.trust.read().expect("lock").clone();
        let tls = TlsOptions::from_ca_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
        let cfg = ClientConfig::new(tls)
            .map_err(|e| e.to_string())?
            .with_connect_timeout(Duration::from_secs(5))
            .with_read_timeout(Duration::from_secs(30))
            .with_response_timeout(Duration::from_secs(30));
        let mut conn = AtConnection::connect(&cfg, &m.endpoint.0, m.endpoint.1)
            .await
            .map_err(|e| e.to_string())?;
        conn.authenticate_cram(&m.atsign, &m.cram)
            .await
            .map_err(|e| e.to_string())?;
        Ok(conn)
    }

    /// Probes peers of Atsign `i` in turn until stopped.
    async fn run(self: Arc<Self>, i: usize) {
        let n = self.members.len();
        let mut conn: Option<AtConnection> = None;
        let mut down_since: Option<Instant> = None;
        let mut turn = 0usize;
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(self.pace) => {}
            }
            let Some(c) = conn.as_mut() else {
                match self.connect_owner(i).await {
                    Ok(c) => {
                        if let Some(since) = down_since.take() {
                            self.own_outages
                                .lock()
                                .expect("lock")
                                .push((i, since.elapsed()));
                        }
                        conn = Some(c);
                    }
                    Err(_) => {
                        down_since.get_or_insert_with(Instant::now);
                    }
                }
                continue;
            };
            let to = (i + 1 + turn % (n - 1)) % n;
            turn += 1;
            let command = format!("plookup:bypassCache:true:probe{}", self.members[to].atsign);
            let phase = self.phase.load(Ordering::SeqCst);
            let (kind, detail) = match c.send(&command).await {
                Ok(Reply::Data(d)) if d.trim() == probe_value(&self.members[to].name) => {
                    (Kind::Success, String::new())
                }
                Ok(Reply::Error { message, .. }) => (classify(&message), message),
                Ok(other) => (Kind::Other, format!("{other:?}")),
                Err(_) => {
                    // Our own atServer went away (its pod rolls): not a server-to-server probe.
                    conn = None;
                    down_since = Some(Instant::now());
                    continue;
                }
            };
            self.probes.lock().expect("lock").push(Probe {
                at: self.started.elapsed(),
                from: i,
                to,
                kind,
                phase,
                detail,
            });
        }
    }

    /// Probes so far from or to Atsign `i`.
    fn involving(&self, i: usize) -> usize {
        let probes = self.probes.lock().expect("lock");
        probes.iter().filter(|p| p.from == i || p.to == i).count()
    }

    /// Whether every Atsign was reached by a probe that succeeded after `since`.
    fn all_reached_after(&self, since: Duration) -> bool {
        let probes = self.probes.lock().expect("lock");
        let mut reached = vec![false; self.members.len()];
        for p in probes
            .iter()
            .filter(|p| p.at > since && p.kind == Kind::Success)
        {
            reached[p.to] = true;
        }
        reached.into_iter().all(|r| r)
    }
}

/// The figures: counts by kind and phase, and per peer the longest time without a successful
/// probe across which some probe failed.
fn report(p: &Probers, phase_times: &[(u8, Duration)]) -> BTreeMap<Kind, usize> {
    let probes = p.probes.lock().expect("lock");
    let n = p.members.len();
    let mut totals: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut by_phase: BTreeMap<(u8, Kind), usize> = BTreeMap::new();
    for probe in probes.iter() {
        *totals.entry(probe.kind).or_default() += 1;
        *by_phase.entry((probe.phase, probe.kind)).or_default() += 1;
    }
    let mut longest = vec![Duration::ZERO; n];
    let mut unreachable_per_peer = vec![0usize; n];
    let mut last_ok: Vec<Option<Duration>> = vec![None; n];
    let mut failed_since_ok = vec![false; n];
    for probe in probes.iter() {
        match probe.kind {
            Kind::Success => {
                if let (true, Some(ok)) = (failed_since_ok[probe.to], last_ok[probe.to]) {
                    longest[probe.to] = longest[probe.to].max(probe.at - ok);
                }
                last_ok[probe.to] = Some(probe.at);
                failed_since_ok[probe.to] = false;
            }
            kind => {
                if kind == Kind::Unreachable {
                    unreachable_per_peer[probe.to] += 1;
                }
                failed_since_ok[probe.to] = true;
            }
        }
    }
    println!("== CA rotation under server-to-server probes: {n} Atsigns ==");
    for (phase, at) in phase_times {
        println!(
            "  {:>7.1} s  {}",
            at.as_secs_f64(),
            PHASES[usize::from(*phase)]
        );
    }
    println!(
        "probes {}: successes {}, TLS failures {}, peer unreachable {}, other {}",
        probes.len(),
        totals.get(&Kind::Success).unwrap_or(&0),
        totals.get(&Kind::Tls).unwrap_or(&0),
        totals.get(&Kind::Unreachable).unwrap_or(&0),
        totals.get(&Kind::Other).unwrap_or(&0),
    );
    for (phase, name) in PHASES.iter().enumerate() {
        let count = |k| by_phase.get(&(phase as u8, k)).copied().unwrap_or(0);
        println!(
            "  during {name}: ok {}, tls {}, unreachable {}, other {}",
            count(Kind::Success),
            count(Kind::Tls),
            count(Kind::Unreachable),
            count(Kind::Other)
        );
    }
    let mut gaps: Vec<Duration> = longest.clone();
    gaps.sort();
    let with_outage = unreachable_per_peer.iter().filter(|c| **c > 0).count();
    println!(
        "peers unreachable at least once: {with_outage} of {n}; longest gap without a successful \
         probe per peer: median {:.1} s, max {:.1} s",
        gaps[n / 2].as_secs_f64(),
        gaps[n - 1].as_secs_f64()
    );
    if n <= 10 {
        for (i, m) in p.members.iter().enumerate() {
            println!(
                "  {}: unreachable {} probes, longest gap {:.1} s",
                m.atsign,
                unreachable_per_peer[i],
                longest[i].as_secs_f64()
            );
        }
    }
    let own = p.own_outages.lock().expect("lock");
    let own_max = own.iter().map(|(_, d)| *d).max().unwrap_or_default();
    println!(
        "probe clients cut off from their own atServer (own pod rolling): {} times, longest {:.1} s",
        own.len(),
        own_max.as_secs_f64()
    );
    // Every distinct failure, digits masked so ports and names group.
    let mut distinct: BTreeMap<(Kind, String), usize> = BTreeMap::new();
    for probe in probes.iter().filter(|p| p.kind != Kind::Success) {
        let masked: String = probe
            .detail
            .chars()
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .collect();
        *distinct.entry((probe.kind, masked)).or_default() += 1;
    }
    for ((kind, detail), count) in &distinct {
        println!("  {count:>5} x {kind:?}: {detail}");
    }
    for probe in probes.iter().filter(|p| p.kind == Kind::Tls).take(5) {
        println!(
            "  first TLS failures: at {:.1} s during {}: {} -> {}",
            probe.at.as_secs_f64(),
            PHASES[usize::from(probe.phase)],
            p.members[probe.from].atsign,
            p.members[probe.to].atsign,
        );
    }
    totals
}

/// Polls `check` until it holds or `limit` passes; false on timeout.
async fn within_limit<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn start_directory(dir: &std::path::Path, ca: &TestCa) -> atdirectory::Running {
    let leaf = ca.localhost_leaf("atdirectory");
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).expect("write token");
    let path = |p: &std::path::Path| p.display().to_string();
    let args = vec![
        "atdirectory".to_owned(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--http-listen".into(),
        "127.0.0.1:0".into(),
        "--tls-cert".into(),
        path(&leaf.cert),
        "--tls-key".into(),
        path(&leaf.key),
        "--database-url".into(),
        atfleet_test_support::postgres::fresh_database("atfleet_rotation").await,
        "--api-token-file".into(),
        path(&token),
        // Every atServer asks from 127.0.0.1: no per-source limit.
        "--rate-limit-per-second".into(),
        "0".into(),
        "--miss-delay-ms".into(),
        "0".into(),
    ];
    let cli = atdirectory::Cli::try_parse_from(args).expect("directory flags");
    atdirectory::start(cli.config)
        .await
        .expect("directory starts")
}

/// An operator replica whose atServers resolve peers through `directory` and trust its CA.
fn start_operator(directory: &atdirectory::Running, directory_ca: &str) -> Replica {
    let dir = DirectoryClient::new(
        &format!("http://{}", directory.http_addr),
        Some(TOKEN.into()),
        None,
    )
    .expect("directory client")
    .with_timeout(Duration::from_secs(5));
    let mut cfg = config();
    cfg.defaults.root_server = format!("127.0.0.1:{}", directory.root_addr.port());
    cfg.defaults.storage_size = "64Mi".into();
    cfg.defaults.trust_bundle = directory_ca.to_owned();
    start_replica(cfg, Some(dir), None)
}

/// Whether the atServer at `endpoint` serves a leaf that `ca` alone verifies.
async fn serves_leaf_of(endpoint: &(String, u16), ca: &str) -> bool {
    let Ok(tls) = TlsOptions::from_ca_pem(ca.as_bytes()) else {
        return false;
    };
    let Ok(cfg) = ClientConfig::new(tls) else {
        return false;
    };
    let cfg = cfg.with_connect_timeout(Duration::from_secs(5));
    match AtConnection::connect(&cfg, &endpoint.0, endpoint.1).await {
        Ok(conn) => {
            let _ = conn.close().await;
            true
        }
        Err(_) => false,
    }
}

/// Every Atsign Ready and Registered.
async fn fleet_ready(client: &kube::Client, names: &[String]) -> bool {
    for name in names {
        for type_ in ["Ready", "Registered"] {
            if condition(client, name, type_).await.map(|c| c.0).as_deref() != Some("True") {
                return false;
            }
        }
    }
    true
}

/// Reads the rotation's progress (phase, the new CA) into `probers` and `phase_times`; true once
/// the CA Secret holds only the new CA and every TLS Secret carries a leaf of it and a bundle
/// without the old one.
async fn rotation_done(
    cas: &Api<Secret>,
    secrets: &Api<Secret>,
    probers: &Probers,
    phase_times: &mut Vec<(u8, Duration)>,
    new_ca: &mut String,
    old_ca: &str,
    size: usize,
) -> bool {
    let Ok(ca) = cas.get("atfleet-ca").await else {
        return false;
    };
    let (current, next, previous) = (
        secret_text(&ca, "ca.crt").unwrap_or_default(),
        secret_text(&ca, "next.crt").unwrap_or_default(),
        secret_text(&ca, "previous.crt").unwrap_or_default(),
    );
    let phase = if current == old_ca {
        u8::from(!next.is_empty())
    } else if !previous.is_empty() {
        2
    } else {
        3
    };
    for pem in [&next, &current] {
        if !pem.is_empty() && pem.as_str() != old_ca && new_ca.is_empty() {
            *new_ca = pem.clone();
            let mut trust = probers.trust.write().expect("lock");
            *trust = format!("{}\n{}", old_ca.trim(), pem.trim());
        }
    }
    let seen = probers.phase.load(Ordering::SeqCst);
    for p in seen + 1..=phase {
        phase_times.push((p, probers.started.elapsed()));
    }
    probers.phase.fetch_max(phase, Ordering::SeqCst);
    if phase < 3 {
        return false;
    }
    let Ok(list) = secrets.list(&ListParams::default()).await else {
        return false;
    };
    let tls: Vec<&Secret> = list
        .items
        .iter()
        .filter(|s| {
            s.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.ends_with("-tls"))
        })
        .collect();
    tls.len() == size
        && tls.iter().all(|s| {
            secret_text(s, "ca.crt").unwrap_or_default() == current
                && !secret_text(s, "trust-bundle.crt")
                    .unwrap_or_default()
                    .contains(old_ca.trim())
        })
}

/// The pod `<name>-0` runs the StatefulSet's current template and is Ready.
fn settled(name: &str, statefulsets: &[StatefulSet], pods: &[Pod]) -> bool {
    let Some(sts) = statefulsets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
    else {
        return false;
    };
    let Some(status) = &sts.status else {
        return false;
    };
    let pod_name = format!("{name}-0");
    let Some(pod) = pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(pod_name.as_str()))
    else {
        return false;
    };
    let revision = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash"));
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    status.observed_generation >= sts.metadata.generation
        && revision.is_some()
        && revision == status.update_revision.as_ref()
        && pod.metadata.deletion_timestamp.is_none()
        && ready
}

/// The pod `<name>-0` exists, is not being deleted, and was made from an older template than the
/// StatefulSet's current one.
fn stale(name: &str, statefulsets: &[StatefulSet], pods: &[Pod]) -> bool {
    let update = statefulsets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
        .and_then(|s| {
            let st = s.status.as_ref()?;
            (st.observed_generation >= s.metadata.generation).then(|| st.update_revision.clone())?
        });
    let pod_name = format!("{name}-0");
    let pod = pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(pod_name.as_str()));
    match (update, pod) {
        (Some(update), Some(pod)) => {
            pod.metadata.deletion_timestamp.is_none()
                && pod
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("controller-revision-hash"))
                    != Some(&update)
        }
        _ => false,
    }
}

async fn fleet_settled(client: &kube::Client, names: &[String]) -> bool {
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), ns());
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns());
    let (Ok(sts), Ok(pods)) = (
        statefulsets.list(&ListParams::default()).await,
        pods.list(&ListParams::default()).await,
    ) else {
        return false;
    };
    names.iter().all(|n| settled(n, &sts.items, &pods.items))
}

/// The last Atsign's class rolls `OnDelete`: like an administrator who replaces such pods after
/// the rest of the fleet, this deletes its pod once its template changed, every other pod runs
/// its own current template, and a few probes from or to it were made in that state. Whatever
/// the rotation did to the others is then met by an atServer that has not restarted (a Retire
/// that came before it served a leaf of the new CA shows as failed handshakes every time).
async fn replace_by_hand(
    client: kube::Client,
    names: Vec<String>,
    probers: Arc<Probers>,
    replaced: Arc<AtomicUsize>,
) {
    let manual = names.len() - 1;
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), ns());
    let pods: Api<Pod> = Api::namespaced(client, ns());
    let mut mark: Option<usize> = None;
    loop {
        tokio::select! {
            _ = probers.stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let (Ok(sts), Ok(list)) = (
            statefulsets.list(&ListParams::default()).await,
            pods.list(&ListParams::default()).await,
        ) else {
            continue;
        };
        let pending = stale(&names[manual], &sts.items, &list.items);
        let others = names[..manual]
            .iter()
            .all(|n| settled(n, &sts.items, &list.items));
        if !pending || !others {
            mark = None;
            continue;
        }
        let seen = probers.involving(manual);
        match mark {
            None => mark = Some(seen),
            Some(m) if seen >= m + 4 => {
                if pods
                    .delete(&format!("{}-0", names[manual]), &DeleteParams::default())
                    .await
                    .is_ok()
                {
                    replaced.fetch_add(1, Ordering::SeqCst);
                }
                mark = None;
            }
            Some(_) => {}
        }
    }
}

async fn rotate_under_probes(size: usize, patience: Duration) {
    assert!(size >= 2, "probes need a peer");
    workspace_bin("atserver", "cargo build -p atserver");
    let state = tempfile::tempdir().expect("tempdir");
    let directory_ca = TestCa::new(state.path(), "ca-rotation atDirectory CA");
    let directory = start_directory(state.path(), &directory_ca).await;
    let (sim, client) = cluster_with(Setup {
        simulate: false,
        ..Setup::default()
    })
    .await;
    let op = start_operator(&directory, &directory_ca.ca_pem);
    let started = Instant::now();

    let names: Vec<String> = (0..size).map(|i| format!("rot{i:03}")).collect();
    let classes: Api<AtServerClass> = Api::all(client.clone());
    let manual_class = format!("rot-manual-{}", &ns()[ns().len() - 8..]);
    let class: AtServerClass = serde_json::from_value(json!({
        "apiVersion": "atfleet.dev/v1alpha1", "kind": "AtServerClass",
        "metadata": { "name": manual_class },
        "spec": { "rollout": { "strategy": "OnDelete" } },
    }))
    .expect("class");
    classes
        .create(&PostParams::default(), &class)
        .await
        .expect("OnDelete class");
    for (i, name) in names.iter().enumerate() {
        let mut spec = json!({
            "exposure": { "mode": "NodePort", "host": "127.0.0.1" },
            "storage": { "size": "64Mi" },
        });
        if i == size - 1 {
            spec["className"] = json!(manual_class);
        }
        create_atsign(&client, name, spec).await;
    }
    let atsigns: Api<atfleet_operator::crd::Atsign> = Api::namespaced(client.clone(), ns());
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns());
    let cas: Api<Secret> = Api::namespaced(client.clone(), system_ns());
    let all_ready = || fleet_ready(&client, &names);
    atfleet_test_support::wait::eventually("the fleet Ready and Registered", patience, all_ready)
        .await;
    let old_ca =
        secret_text(&cas.get("atfleet-ca").await.expect("CA"), "ca.crt").unwrap_or_default();
    println!(
        "{size} real atServers Ready and Registered in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Each Atsign publishes what its peers will look up.
    let mut members = Vec::new();
    for name in &names {
        let a = atsigns.get(name).await.expect("Atsign");
        let ep = a.status.and_then(|s| s.endpoint).expect("status.endpoint");
        let (host, port) = ep.rsplit_once(':').expect("host:port");
        let cram = secret_text(
            &secrets.get(&format!("{name}-cram")).await.expect("cram"),
            "cramSecret",
        )
        .unwrap_or_default();
        members.push(Member {
            name: name.clone(),
            atsign: AtSign::parse(&format!("@{name}")).expect("atSign"),
            endpoint: (host.to_owned(), port.parse().expect("port")),
            cram,
        });
    }
    let probers = Arc::new(Probers {
        members,
        trust: RwLock::new(old_ca.clone()),
        phase: AtomicU8::new(0),
        started: Instant::now(),
        // About 50 probes a second in all, at most 10 a second per Atsign.
        pace: Duration::from_millis((20 * size as u64).max(100)),
        probes: Mutex::new(Vec::new()),
        own_outages: Mutex::new(Vec::new()),
        stop: CancellationToken::new(),
    });
    for (i, m) in probers.members.iter().enumerate() {
        atfleet_test_support::wait::until(
            &format!("{} publishing its probe value", m.atsign),
            patience,
            || async {
                let mut conn = probers.connect_owner(i).await?;
                let update = format!("update:public:probe{} {}", m.atsign, probe_value(&m.name));
                match conn.send(&update).await {
                    Ok(Reply::Data(_)) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
    }
    let mut tasks: Vec<_> = (0..size)
        .map(|i| tokio::spawn(probers.clone().run(i)))
        .collect();
    let replaced = Arc::new(AtomicUsize::new(0));
    tasks.push(tokio::spawn(replace_by_hand(
        client.clone(),
        names.clone(),
        probers.clone(),
        replaced.clone(),
    )));
    let before = probers.started.elapsed();
    let warmed = within_limit(patience, || async { probers.all_reached_after(before) }).await;
    assert!(
        warmed,
        "server-to-server probes do not succeed before the rotation"
    );

    // Rotate.
    request_ca_rotation(&client).await;
    let rotating = Instant::now();
    let mut phase_times = vec![(0u8, probers.started.elapsed())];
    let mut new_ca = String::new();
    let deadline = Instant::now() + patience * 3;
    let mut completed = false;
    while !completed && Instant::now() < deadline {
        completed = rotation_done(
            &cas,
            &secrets,
            &probers,
            &mut phase_times,
            &mut new_ca,
            &old_ca,
            size,
        )
        .await;
        if !completed {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let mut served = false;
    if completed {
        // Every pod runs its final template (the OnDelete one replaced by hand too) and serves a
        // leaf of the new CA (a client trusting only it gets through).
        served = within_limit(patience, || async {
            if !all_ready().await || !fleet_settled(&client, &names).await {
                return false;
            }
            for m in &probers.members {
                if !serves_leaf_of(&m.endpoint, &new_ca).await {
                    return false;
                }
            }
            true
        })
        .await;
    }
    let rotation = rotating.elapsed();
    let done_at = probers.started.elapsed();
    if served {
        phase_times.push((4, done_at));
        probers.phase.store(4, Ordering::SeqCst);
        // And every atServer is reached again by its peers afterwards.
        let reached = within_limit(patience, || async { probers.all_reached_after(done_at) }).await;
        assert!(reached, "some atServer is not reached after the rotation");
    }
    probers.stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let totals = report(&probers, &phase_times);
    println!(
        "rotation (annotation to every atServer serving a leaf of the new CA): {:.1} s; whole \
         test {:.1} s",
        rotation.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let metrics = op.metrics.encode();
    let steps: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("atfleet_operator_ca_rotation_steps_total"))
        .collect();
    println!(
        "operator: {steps:?}; the OnDelete pod of {} replaced by hand {} times",
        probers.members[size - 1].atsign,
        replaced.load(Ordering::SeqCst)
    );
    assert!(completed, "the rotation did not complete");
    assert!(served, "not every atServer serves a leaf of the new CA");
    assert_eq!(
        totals.get(&Kind::Tls).copied().unwrap_or(0),
        0,
        "server-to-server TLS handshakes failed during the rotation"
    );
    assert_eq!(
        totals.get(&Kind::Other).copied().unwrap_or(0),
        0,
        "probes failed for reasons other than TLS or an unreachable peer"
    );
    assert!(totals.get(&Kind::Success).copied().unwrap_or(0) > 0);
    let _ = classes
        .delete(&manual_class, &DeleteParams::default())
        .await;
    teardown(sim, op).await;
    directory.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_rotation_fails_no_server_to_server_handshake() {
    rotate_under_probes(5, Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "acceptance run: 100 real atServers, minutes"]
async fn a_fleet_rotates_its_ca_without_a_failed_handshake() {
    let size: usize = std::env::var("ATFLEET_FLEET_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    rotate_under_probes(size, Duration::from_secs(900)).await;
}

#[test]
fn failures_are_sorted_by_what_the_atserver_reported() {
    let peer = "Unable to connect to secondary : talking to @rot001's atServer: ";
    for (detail, kind) in [
        (
            "I/O error while TLS handshake with 127.0.0.1:31000: invalid peer certificate: BadSignature",
            Kind::Tls,
        ),
        (
            "I/O error while reading the greeting: received fatal alert: DecryptError",
            Kind::Tls,
        ),
        (
            "I/O error while TLS handshake with 127.0.0.1:31000: Connection reset by peer (os error 104)",
            Kind::Unreachable,
        ),
        (
            "I/O error while TLS handshake with 127.0.0.1:31000: tls handshake eof",
            Kind::Unreachable,
        ),
        (
            "I/O error while connecting to 127.0.0.1:31000: Connection refused (os error 111)",
            Kind::Unreachable,
        ),
        ("@rot001 is not registered in the atDirectory", Kind::Other),
    ] {
        assert_eq!(classify(&format!("{peer}{detail}")), kind, "{detail}");
    }
}
