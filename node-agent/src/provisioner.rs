//! The local-path provisioner (like kind's): the `local-path` StorageClass, a directory and a
//! PersistentVolume for every claim of a class with this provisioner once the scheduler picks
//! this node for it, reclaim (directory, then PV) of Released volumes whose policy is `Delete`,
//! and expansion of bound claims whose request grows. Binding stays with the upstream PV binder.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, ResourceExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::error::{io, AgentError};
use super::volumes::pv_path;

/// The StorageClass the agent makes (the cluster's default class).
pub const STORAGE_CLASS_NAME: &str = "local-path";
/// The `provisioner` of classes whose claims this agent provisions.
pub const PROVISIONER_NAME: &str = "atfleet.dev/local-path";
/// Set on every PersistentVolume this agent made.
pub const PROVISIONED_BY_ANNOTATION: &str = "pv.kubernetes.io/provisioned-by";
/// Set on a claim by the scheduler when its class waits for the first consumer.
pub const SELECTED_NODE_ANNOTATION: &str = "volume.kubernetes.io/selected-node";
/// The node whose directory holds a PersistentVolume this agent made.
pub const NODE_LABEL: &str = "node-agent.atfleet.dev/node";

/// Volume operations in flight at once.
const CONCURRENCY: usize = 16;

/// The `local-path` class: default, expandable, reclaim `Delete`, bound once a pod is scheduled
/// (`WaitForFirstConsumer`, so the agent of the chosen node provisions it).
pub fn storage_class() -> Value {
    json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS_NAME,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER_NAME,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": true,
    })
}

/// Creates the `local-path` StorageClass unless it exists (an existing one is left as it is).
pub async fn ensure_storage_class(client: &kube::Client) -> Result<(), AgentError> {
    let api: Api<StorageClass> = Api::all(client.clone());
    if api.get_opt(STORAGE_CLASS_NAME).await?.is_some() {
        return Ok(());
    }
    let class: StorageClass = serde_json::from_value(storage_class())
        .map_err(|e| AgentError::Unsupported(e.to_string()))?;
    match api.create(&PostParams::default(), &class).await {
        Ok(_) => {
            tracing::info!(class = STORAGE_CLASS_NAME, "storage class created");
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A Kubernetes quantity (`1Gi`, `500M`, `1.5Gi`, `100m`, `2e3`) in whole units, rounded up.
pub fn parse_quantity(q: &str) -> Option<u128> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let (mul, div): (u128, u128) = match suffix {
        "" => (1, 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        "Ti" => (1 << 40, 1),
        "Pi" => (1 << 50, 1),
        "Ei" => (1 << 60, 1),
        "m" => (1, 1000),
        "k" => (1_000, 1),
        "M" => (1_000_000, 1),
        "G" => (1_000_000_000, 1),
        "T" => (1_000_000_000_000, 1),
        "P" => (1_000_000_000_000_000, 1),
        "E" => (1_000_000_000_000_000_000, 1),
        s => {
            let exp: u32 = s.strip_prefix(['e', 'E'])?.parse().ok()?;
            (10u128.checked_pow(exp)?, 1)
        }
    };
    let number = number.strip_prefix('+').unwrap_or(number);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let scale = 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?;
    let frac: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    let numerator = int
        .checked_mul(scale)?
        .checked_add(frac)?
        .checked_mul(mul)?;
    let denominator = scale.checked_mul(div)?;
    Some(numerator.div_ceil(denominator))
}

/// The class facts the provisioner needs.
#[derive(Debug, Clone)]
struct Class {
    reclaim_policy: String,
    wait_for_consumer: bool,
}

/// What one sync decided to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Make a directory and a PV for the claim.
    Provision {
        pv: String,
        claim: Box<PersistentVolumeClaim>,
        reclaim_policy: String,
    },
    /// Remove the directory, then the PV.
    Reclaim { pv: String, path: PathBuf },
    /// Raise the PV's capacity, then the claim's `status.capacity`, to `size`.
    Expand {
        pv: String,
        namespace: String,
        claim: String,
        size: String,
        pv_needs_raise: bool,
    },
}

fn ours(pv: &PersistentVolume, node: &str) -> bool {
    pv.annotations()
        .get(PROVISIONED_BY_ANNOTATION)
        .map(String::as_str)
        == Some(PROVISIONER_NAME)
        && pv.labels().get(NODE_LABEL).map(String::as_str) == Some(node)
}

fn storage(
    map: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
) -> Option<String> {
    map?.get("storage").map(|q| q.0.clone())
}

/// The actions the current claims, volumes and classes call for on node `node`.
pub fn plan(
    classes: &[Arc<StorageClass>],
    claims: &[Arc<PersistentVolumeClaim>],
    volumes: &[Arc<PersistentVolume>],
    node: &str,
    volumes_dir: &Path,
) -> Vec<Action> {
    let classes: HashMap<String, Class> = classes
        .iter()
        .filter(|c| c.provisioner == PROVISIONER_NAME)
        .map(|c| {
            (
                c.name_any(),
                Class {
                    reclaim_policy: c.reclaim_policy.clone().unwrap_or_else(|| "Delete".into()),
                    wait_for_consumer: c.volume_binding_mode.as_deref()
                        == Some("WaitForFirstConsumer"),
                },
            )
        })
        .collect();
    let volumes: HashMap<String, &Arc<PersistentVolume>> = volumes
        .iter()
        .filter(|pv| ours(pv, node))
        .map(|pv| (pv.name_any(), pv))
        .collect();
    let mut actions = Vec::new();
    for claim in claims {
        let Some(spec) = &claim.spec else { continue };
        let Some(class) = spec
            .storage_class_name
            .as_deref()
            .and_then(|c| classes.get(c))
        else {
            continue;
        };
        let bound_to = spec.volume_name.as_deref().filter(|v| !v.is_empty());
        let phase = claim.status.as_ref().and_then(|s| s.phase.as_deref());
        let request = storage(spec.resources.as_ref().and_then(|r| r.requests.as_ref()));
        if let Some(pv_name) = bound_to {
            // Expansion of a bound claim of ours.
            let (Some(pv), Some(request)) = (volumes.get(pv_name), request) else {
                continue;
            };
            if phase != Some("Bound") {
                continue;
            }
            let pv_cap = storage(pv.spec.as_ref().and_then(|s| s.capacity.as_ref()));
            let claim_cap = storage(claim.status.as_ref().and_then(|s| s.capacity.as_ref()));
            let want = parse_quantity(&request);
            let has = pv_cap.as_deref().and_then(parse_quantity);
            let reported = claim_cap.as_deref().and_then(parse_quantity);
            if want > has {
                actions.push(Action::Expand {
                    pv: pv_name.to_owned(),
                    namespace: claim.namespace().unwrap_or_default(),
                    claim: claim.name_any(),
                    size: request,
                    pv_needs_raise: true,
                });
            } else if has.is_some() && reported < has && want > reported {
                // An expansion whose claim status was not written yet.
                actions.push(Action::Expand {
                    pv: pv_name.to_owned(),
                    namespace: claim.namespace().unwrap_or_default(),
                    claim: claim.name_any(),
                    size: pv_cap.unwrap_or_default(),
                    pv_needs_raise: false,
                });
            }
            continue;
        }
        if claim.metadata.deletion_timestamp.is_some() || !matches!(phase, None | Some("Pending")) {
            continue;
        }
        if class.wait_for_consumer
            && claim
                .annotations()
                .get(SELECTED_NODE_ANNOTATION)
                .map(String::as_str)
                != Some(node)
        {
            continue;
        }
        if spec.volume_mode.as_deref() == Some("Block") {
            continue;
        }
        let Some(uid) = claim.uid() else { continue };
        let pv = format!("pvc-{uid}");
        if volumes.contains_key(&pv) {
            continue;
        }
        actions.push(Action::Provision {
            pv,
            claim: Box::new((**claim).clone()),
            reclaim_policy: class.reclaim_policy.clone(),
        });
    }
    for (name, pv) in &volumes {
        let Some(spec) = &pv.spec else { continue };
        let released = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
        if !released
            || pv.metadata.deletion_timestamp.is_some()
            || spec.persistent_volume_reclaim_policy.as_deref() != Some("Delete")
        {
            continue;
        }
        // Never remove anything outside this agent's volume directory.
        let Some(path) = pv_path(pv).filter(|p| p.starts_with(volumes_dir)) else {
            continue;
        };
        actions.push(Action::Reclaim {
            pv: name.clone(),
            path,
        });
    }
    actions
}

/// The PersistentVolume for `claim` in `dir` on `node`.
pub fn volume_for(
    pv: &str,
    claim: &PersistentVolumeClaim,
    reclaim_policy: &str,
    dir: &Path,
    node: &str,
) -> Value {
    let spec = claim.spec.clone().unwrap_or_default();
    let request = storage(spec.resources.as_ref().and_then(|r| r.requests.as_ref()))
        .unwrap_or_else(|| "1Gi".into());
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": pv,
            "labels": {NODE_LABEL: node},
            "annotations": {PROVISIONED_BY_ANNOTATION: PROVISIONER_NAME},
        },
        "spec": {
            "capacity": {"storage": request},
            "accessModes": spec.access_modes.unwrap_or_else(|| vec!["ReadWriteOnce".into()]),
            "persistentVolumeReclaimPolicy": reclaim_policy,
            "storageClassName": spec.storage_class_name,
            "volumeMode": spec.volume_mode.unwrap_or_else(|| "Filesystem".into()),
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": claim.namespace(),
                "name": claim.name_any(),
                "uid": claim.uid(),
            },
            "local": {"path": dir.display().to_string()},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]},
            ]}]}},
        },
    })
}

/// What changed, as the watches report it.
enum Change {
    Claim(String, String),
    Volume(String),
    /// A class changed or a watch relisted: look at everything.
    All,
}

/// A reflector store for `api`, its changes sent to `changes` (`key` names an applied object;
/// `None` asks for a full look).
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    changes: &mpsc::UnboundedSender<Change>,
    key: fn(&K) -> Option<Change>,
    stop: &CancellationToken,
) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config)).default_backoff();
    let changes = changes.clone();
    let stop = stop.clone();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            let ev = tokio::select! {
                _ = stop.cancelled() => return,
                ev = stream.next() => ev,
            };
            let change = match ev {
                None => return,
                Some(Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o))) => key(&o),
                Some(Ok(watcher::Event::InitDone)) => Some(Change::All),
                Some(Ok(watcher::Event::Delete(_) | watcher::Event::Init)) | Some(Err(_)) => None,
            };
            if let Some(c) = change {
                if changes.send(c).is_err() {
                    return;
                }
            }
        }
    });
    reader
}

/// The PV named `name` from the store, as a one-element list (or empty).
fn volume_named(volumes: &Store<PersistentVolume>, name: &str) -> Vec<Arc<PersistentVolume>> {
    volumes.get(&ObjectRef::new(name)).into_iter().collect()
}

/// The actions for what changed: each changed claim with its volumes, each changed volume with
/// its claim; everything when asked.
fn plan_changes(
    all: bool,
    claims_changed: &HashSet<(String, String)>,
    volumes_changed: &HashSet<String>,
    stores: (
        &Store<StorageClass>,
        &Store<PersistentVolumeClaim>,
        &Store<PersistentVolume>,
    ),
    node: &str,
    volumes_dir: &Path,
) -> Vec<Action> {
    let (classes, claims, volumes) = stores;
    let classes = classes.state();
    if all {
        return plan(
            &classes,
            &claims.state(),
            &volumes.state(),
            node,
            volumes_dir,
        );
    }
    let mut actions = Vec::new();
    for (ns, name) in claims_changed {
        let Some(claim) = claims.get(&ObjectRef::new(name).within(ns)) else {
            continue;
        };
        let mut vols = claim
            .uid()
            .map(|uid| volume_named(volumes, &format!("pvc-{uid}")))
            .unwrap_or_default();
        if let Some(bound) = claim.spec.as_ref().and_then(|s| s.volume_name.as_deref()) {
            if vols
                .iter()
                .all(|v| v.metadata.name.as_deref() != Some(bound))
            {
                vols.extend(volume_named(volumes, bound));
            }
        }
        // Only the claim's own actions: a volume's reclaim comes with the volume's change.
        actions.extend(
            plan(&classes, &[claim], &vols, node, volumes_dir)
                .into_iter()
                .filter(|a| !matches!(a, Action::Reclaim { .. })),
        );
    }
    for name in volumes_changed {
        let vols = volume_named(volumes, name);
        let Some(pv) = vols.first() else { continue };
        let claim: Vec<Arc<PersistentVolumeClaim>> = pv
            .spec
            .as_ref()
            .and_then(|s| s.claim_ref.as_ref())
            .and_then(|r| {
                claims.get(&ObjectRef::new(r.name.as_deref()?).within(r.namespace.as_deref()?))
            })
            .into_iter()
            .collect();
        for a in plan(&classes, &claim, &vols, node, volumes_dir) {
            if !actions.contains(&a) {
                actions.push(a);
            }
        }
    }
    actions
}

/// Provisions, reclaims and expands volumes on node `node` until `stop`. Each watch event looks
/// at the object it names (so a fleet of claims costs linear work); a relist, a class change and
/// every `resync` look at everything.
pub async fn run(
    client: kube::Client,
    node: String,
    volumes_dir: PathBuf,
    resync: Duration,
    stop: CancellationToken,
) {
    let volumes_dir = std::path::absolute(&volumes_dir).unwrap_or(volumes_dir);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let classes = reflect::<StorageClass>(
        Api::all(client.clone()),
        watcher::Config::default(),
        &tx,
        |_| Some(Change::All),
        &stop,
    );
    let claims = reflect::<PersistentVolumeClaim>(
        Api::all(client.clone()),
        watcher::Config::default(),
        &tx,
        |c| Some(Change::Claim(c.namespace()?, c.name_any())),
        &stop,
    );
    let volumes = reflect::<PersistentVolume>(
        Api::all(client.clone()),
        watcher::Config::default().labels(&format!("{NODE_LABEL}={node}")),
        &tx,
        |v| Some(Change::Volume(v.name_any())),
        &stop,
    );
    drop(tx);
    let ready = async {
        let _ = classes.wait_until_ready().await;
        let _ = claims.wait_until_ready().await;
        let _ = volumes.wait_until_ready().await;
    };
    tokio::select! {
        _ = stop.cancelled() => return,
        _ = ready => {}
    }
    // PVs made but not yet seen by the watch: not made again meanwhile.
    let mut made: HashSet<String> = HashSet::new();
    let mut all = true;
    let mut claims_changed = HashSet::new();
    let mut volumes_changed = HashSet::new();
    let mut next_resync = tokio::time::Instant::now() + resync;
    loop {
        // Everything that arrived meanwhile, at once.
        while let Ok(c) = rx.try_recv() {
            match c {
                Change::Claim(ns, name) => {
                    claims_changed.insert((ns, name));
                }
                Change::Volume(name) => {
                    volumes_changed.insert(name);
                }
                Change::All => all = true,
            }
        }
        if tokio::time::Instant::now() >= next_resync {
            all = true;
            next_resync = tokio::time::Instant::now() + resync;
        }
        if !made.is_empty() {
            made.retain(|pv| volumes.get(&ObjectRef::new(pv)).is_none());
        }
        let actions: Vec<Action> = plan_changes(
            all,
            &claims_changed,
            &volumes_changed,
            (&classes, &claims, &volumes),
            &node,
            &volumes_dir,
        )
        .into_iter()
        .filter(|a| !matches!(a, Action::Provision { pv, .. } if made.contains(pv)))
        .collect();
        all = false;
        claims_changed.clear();
        volumes_changed.clear();
        let done: Vec<Option<String>> = futures::stream::iter(actions)
            .map(|a| {
                let client = client.clone();
                let (node, dir) = (node.as_str(), volumes_dir.as_path());
                async move {
                    match act(&client, &a, node, dir).await {
                        Ok(()) => match a {
                            Action::Provision { pv, .. } => Some(pv),
                            _ => None,
                        },
                        Err(e) => {
                            tracing::warn!(action = ?a, error = %e, "volume operation failed");
                            None
                        }
                    }
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        made.extend(done.into_iter().flatten());
        // Wait for the next change (or the resync).
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(next_resync) => {}
            c = rx.recv() => match c {
                Some(Change::Claim(ns, name)) => { claims_changed.insert((ns, name)); }
                Some(Change::Volume(name)) => { volumes_changed.insert(name); }
                Some(Change::All) => all = true,
                None => break,
            },
        }
    }
}

async fn act(
    client: &kube::Client,
    action: &Action,
    node: &str,
    volumes_dir: &Path,
) -> Result<(), AgentError> {
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    match action {
        Action::Provision {
            pv,
            claim,
            reclaim_policy,
        } => {
            let dir = volumes_dir.join(pv);
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            let volume: PersistentVolume =
                serde_json::from_value(volume_for(pv, claim, reclaim_policy, &dir, node))
                    .map_err(|e| AgentError::Unsupported(e.to_string()))?;
            match pvs.create(&PostParams::default(), &volume).await {
                Ok(_) => {
                    tracing::info!(pv = %pv, claim = %claim.name_any(), namespace = ?claim.namespace(), "volume provisioned");
                    Ok(())
                }
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Action::Reclaim { pv, path } => {
            match std::fs::remove_dir_all(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(path)(e)),
            }
            match pvs.delete(pv, &DeleteParams::default()).await {
                Ok(_) => {
                    tracing::info!(pv = %pv, path = %path.display(), "volume reclaimed (directory and PV removed)");
                    Ok(())
                }
                Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Action::Expand {
            pv,
            namespace,
            claim,
            size,
            pv_needs_raise,
        } => {
            if *pv_needs_raise {
                pvs.patch(
                    pv,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"capacity": {"storage": size}}})),
                )
                .await?;
            }
            let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
            claims
                .patch_status(
                    claim,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"capacity": {"storage": size}}})),
                )
                .await?;
            tracing::info!(pv = %pv, claim = %claim, namespace = %namespace, size = %size, "volume expanded");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("1Gi"), Some(1 << 30));
        assert_eq!(parse_quantity("1.5Gi"), Some(3 << 29));
        assert_eq!(parse_quantity("500M"), Some(500_000_000));
        assert_eq!(parse_quantity("100m"), Some(1));
        assert_eq!(parse_quantity("2e3"), Some(2000));
        assert_eq!(parse_quantity("1024"), Some(1024));
        assert_eq!(parse_quantity("0.5"), Some(1));
        assert_eq!(parse_quantity("Gi"), None);
        assert_eq!(parse_quantity("1Xi"), None);
        assert!(parse_quantity("2Gi") > parse_quantity("2G"));
    }

    fn class(mode: &str, policy: &str) -> Arc<StorageClass> {
        let mut c: StorageClass = serde_json::from_value(storage_class()).expect("class");
        c.volume_binding_mode = Some(mode.into());
        c.reclaim_policy = Some(policy.into());
        Arc::new(c)
    }

    fn claim(v: Value) -> Arc<PersistentVolumeClaim> {
        Arc::new(serde_json::from_value(v).expect("claim"))
    }

    fn pending(selected: Option<&str>) -> Arc<PersistentVolumeClaim> {
        let mut annotations = serde_json::Map::new();
        if let Some(n) = selected {
            annotations.insert(SELECTED_NODE_ANNOTATION.into(), json!(n));
        }
        claim(json!({
            "metadata": {"name": "data", "namespace": "ns", "uid": "u1", "annotations": annotations},
            "spec": {"storageClassName": "local-path", "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Pending"},
        }))
    }

    #[test]
    fn provisions_for_the_selected_node_only() {
        let dir = Path::new("/s/volumes");
        let classes = [class("WaitForFirstConsumer", "Delete")];
        assert!(plan(&classes, &[pending(None)], &[], "n1", dir).is_empty());
        assert!(plan(&classes, &[pending(Some("n2"))], &[], "n1", dir).is_empty());
        let actions = plan(&classes, &[pending(Some("n1"))], &[], "n1", dir);
        let [Action::Provision {
            pv,
            claim,
            reclaim_policy,
        }] = actions.as_slice()
        else {
            panic!("one provision: {actions:?}");
        };
        assert_eq!(pv, "pvc-u1");
        assert_eq!(reclaim_policy, "Delete");
        let v = volume_for(pv, claim, reclaim_policy, &dir.join(pv), "n1");
        assert_eq!(v["spec"]["capacity"]["storage"], "1Gi");
        assert_eq!(v["spec"]["claimRef"]["uid"], "u1");
        assert_eq!(v["spec"]["local"]["path"], "/s/volumes/pvc-u1");
        assert_eq!(v["spec"]["accessModes"][0], "ReadWriteOnce");
        assert_eq!(
            v["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
                ["values"][0],
            "n1"
        );
        let pv: Arc<PersistentVolume> = Arc::new(serde_json::from_value(v).expect("pv"));
        assert!(
            plan(&classes, &[pending(Some("n1"))], &[pv], "n1", dir).is_empty(),
            "already provisioned"
        );
        // Immediate binding provisions at once.
        let immediate = [class("Immediate", "Retain")];
        assert_eq!(plan(&immediate, &[pending(None)], &[], "n1", dir).len(), 1);
        // Another provisioner's class is not ours.
        let mut other = (*class("Immediate", "Delete")).clone();
        other.provisioner = "example.com/other".into();
        assert!(plan(&[Arc::new(other)], &[pending(None)], &[], "n1", dir).is_empty());
    }

    fn volume(phase: &str, policy: &str, capacity: &str, path: &str) -> Arc<PersistentVolume> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": "pvc-u1", "labels": {NODE_LABEL: "n1"},
                             "annotations": {PROVISIONED_BY_ANNOTATION: PROVISIONER_NAME}},
                "spec": {"capacity": {"storage": capacity}, "persistentVolumeReclaimPolicy": policy,
                         "local": {"path": path}},
                "status": {"phase": phase},
            }))
            .expect("pv"),
        )
    }

    #[test]
    fn reclaims_released_delete_volumes_inside_the_directory() {
        let dir = Path::new("/s/volumes");
        let classes = [class("WaitForFirstConsumer", "Delete")];
        let released = volume("Released", "Delete", "1Gi", "/s/volumes/pvc-u1");
        let actions = plan(&classes, &[], &[released], "n1", dir);
        assert_eq!(
            actions,
            vec![Action::Reclaim {
                pv: "pvc-u1".into(),
                path: PathBuf::from("/s/volumes/pvc-u1")
            }]
        );
        let retained = volume("Released", "Retain", "1Gi", "/s/volumes/pvc-u1");
        assert!(plan(&classes, &[], &[retained], "n1", dir).is_empty());
        let bound = volume("Bound", "Delete", "1Gi", "/s/volumes/pvc-u1");
        assert!(plan(&classes, &[], &[bound], "n1", dir).is_empty());
        let outside = volume("Released", "Delete", "1Gi", "/etc");
        assert!(plan(&classes, &[], &[outside], "n1", dir).is_empty());
        let elsewhere = volume("Released", "Delete", "1Gi", "/s/volumes/pvc-u1");
        assert!(
            plan(&classes, &[], &[elsewhere], "n2", dir).is_empty(),
            "another node's"
        );
    }

    #[test]
    fn expands_grown_claims() {
        let dir = Path::new("/s/volumes");
        let classes = [class("WaitForFirstConsumer", "Delete")];
        let bound = |request: &str, status: &str| {
            claim(json!({
                "metadata": {"name": "data", "namespace": "ns", "uid": "u1"},
                "spec": {"storageClassName": "local-path", "volumeName": "pvc-u1",
                         "resources": {"requests": {"storage": request}}},
                "status": {"phase": "Bound", "capacity": {"storage": status}},
            }))
        };
        let pv = volume("Bound", "Delete", "1Gi", "/s/volumes/pvc-u1");
        assert!(plan(
            &classes,
            &[bound("1Gi", "1Gi")],
            std::slice::from_ref(&pv),
            "n1",
            dir
        )
        .is_empty());
        let actions = plan(&classes, &[bound("2Gi", "1Gi")], &[pv], "n1", dir);
        assert_eq!(
            actions,
            vec![Action::Expand {
                pv: "pvc-u1".into(),
                namespace: "ns".into(),
                claim: "data".into(),
                size: "2Gi".into(),
                pv_needs_raise: true
            }]
        );
        // PV raised, claim status not yet.
        let raised = volume("Bound", "Delete", "2Gi", "/s/volumes/pvc-u1");
        let actions = plan(
            &classes,
            &[bound("2Gi", "1Gi")],
            std::slice::from_ref(&raised),
            "n1",
            dir,
        );
        assert!(matches!(
            actions.as_slice(),
            [Action::Expand {
                pv_needs_raise: false,
                ..
            }]
        ));
        assert!(plan(&classes, &[bound("2Gi", "2Gi")], &[raised], "n1", dir).is_empty());
    }
}
