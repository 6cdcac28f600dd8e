//! The Node object: registration, its status (capacity, addresses, conditions, node info), the
//! `Lease` in `kube-node-lease` that tells the node lifecycle controller the node is alive, and
//! the NotReady mark on shutdown.

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::error::AgentError;

/// Where node leases live.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The lease's `leaseDurationSeconds` (the real kubelet's default).
pub const LEASE_DURATION_SECONDS: i32 = 40;
/// How often the lease is renewed (a quarter of its duration, as the real kubelet does).
pub const LEASE_RENEW: Duration = Duration::from_secs(10);
/// How often the Ready condition's heartbeat is refreshed in the Node's status.
pub const STATUS_HEARTBEAT: Duration = Duration::from_secs(30);

/// What this machine offers, as the Node's capacity reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostResources {
    /// Logical CPUs.
    pub cpus: u32,
    /// `MemTotal` from `/proc/meminfo`, in KiB.
    pub memory_kib: u64,
    /// Size of the file system holding the state directory, in KiB (when known).
    pub ephemeral_storage_kib: Option<u64>,
}

/// CPUs, memory (from `/proc/meminfo`) and the size of the file system holding `state_dir`.
pub fn host_resources(state_dir: &Path) -> HostResources {
    let cpus = std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(1);
    let memory_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| mem_total_kib(&m))
        .unwrap_or(0);
    let _ = std::fs::create_dir_all(state_dir);
    let ephemeral_storage_kib = rustix::fs::statvfs(state_dir)
        .ok()
        .map(|s| s.f_blocks.saturating_mul(s.f_frsize) / 1024);
    HostResources {
        cpus,
        memory_kib,
        ephemeral_storage_kib,
    }
}

/// The capacity a simulated node reports: 100m CPU and 256 MiB for each of `max_pods` pods (and
/// never less than this machine has), so the scheduler's fit decides nothing in a simulation.
pub fn simulated_resources(state_dir: &Path, max_pods: u32) -> HostResources {
    let host = host_resources(state_dir);
    HostResources {
        cpus: host.cpus.max(max_pods.div_ceil(10)),
        memory_kib: host.memory_kib.max(u64::from(max_pods) * 256 * 1024),
        ephemeral_storage_kib: host.ephemeral_storage_kib,
    }
}

/// `MemTotal:       24576000 kB` → 24576000.
fn mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix("MemTotal:")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The Node this agent registers.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    pub resources: HostResources,
    pub max_pods: u32,
    /// The kubelet API's port, published as `daemonEndpoints.kubeletEndpoint.Port`.
    pub kubelet_port: Option<u16>,
    /// Set when the Node is created.
    pub taints: Vec<k8s_openapi::api::core::v1::Taint>,
}

/// `x86_64` → `amd64`, as Go names architectures.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn os_image() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_owned())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

impl NodeInfo {
    fn labels(&self) -> Value {
        json!({
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": go_arch(),
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": go_arch(),
            "node-agent.atfleet.dev/node-agent": "true",
        })
    }

    /// The Node object to create.
    pub fn object(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": self.labels()},
            "spec": {"taints": self.taints},
        })
    }

    /// The Node's `status`: Ready (or not, with `reason`) since `since`, heartbeat `now`.
    pub fn status(&self, ready: bool, reason: &str, since: Timestamp, now: Timestamp) -> Value {
        let r = &self.resources;
        let mut capacity = json!({
            "cpu": r.cpus.to_string(),
            "memory": format!("{}Ki", r.memory_kib),
            "pods": self.max_pods.to_string(),
        });
        if let (Some(kib), Some(obj)) = (r.ephemeral_storage_kib, capacity.as_object_mut()) {
            obj.insert("ephemeral-storage".into(), json!(format!("{kib}Ki")));
        }
        let (now, since) = (seconds(now), seconds(since));
        let condition = |type_: &str, status: &str, reason: &str, message: &str| {
            json!({
                "type": type_, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": since,
            })
        };
        let ready_condition = if ready {
            condition(
                "Ready",
                "True",
                reason,
                "the atfleet node agent is posting ready status",
            )
        } else {
            condition("Ready", "False", reason, "the atfleet node agent stopped")
        };
        json!({
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.name},
            ],
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                          "the node agent does not measure memory pressure"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                          "the node agent does not measure disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID",
                          "the node agent does not measure PID pressure"),
                ready_condition,
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port.unwrap_or(0)}},
            "nodeInfo": {
                "machineID": read_trimmed("/etc/machine-id"),
                "systemUUID": read_trimmed("/etc/machine-id"),
                "bootID": read_trimmed("/proc/sys/kernel/random/boot_id"),
                "kernelVersion": read_trimmed("/proc/sys/kernel/osrelease"),
                "osImage": os_image(),
                "containerRuntimeVersion": concat!("process://atfleet-node-agent-", env!("CARGO_PKG_VERSION")),
                "kubeletVersion": crate::KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": go_arch(),
            },
        })
    }

    /// The node's Lease, renewed at `now`; owned by the Node so it goes with it.
    pub fn lease(&self, node_uid: Option<&str>, now: Timestamp) -> Result<Lease, AgentError> {
        let mut lease = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE},
            "spec": {
                "holderIdentity": self.name,
                "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                "renewTime": MicroTime(now),
            },
        });
        if let (Some(uid), Some(meta)) = (node_uid, lease["metadata"].as_object_mut()) {
            meta.insert(
                "ownerReferences".into(),
                json!([{"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": uid}]),
            );
        }
        serde_json::from_value(lease).map_err(|e| AgentError::Unsupported(e.to_string()))
    }
}

/// RFC 3339 with whole seconds, as `metav1.Time` is written.
fn seconds(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

/// The registered node: its uid (for the lease's owner reference) and when Ready became true.
pub struct Registered {
    uid: Option<String>,
    ready_since: Timestamp,
}

/// Creates the Node unless it exists, then writes its status (Ready) and its Lease.
pub async fn register(client: &kube::Client, info: &NodeInfo) -> Result<Registered, AgentError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let existing = match nodes.get_opt(&info.name).await? {
        Some(n) => n,
        None => {
            let node: Node = serde_json::from_value(info.object())
                .map_err(|e| AgentError::Unsupported(e.to_string()))?;
            match nodes.create(&PostParams::default(), &node).await {
                Ok(n) => {
                    tracing::info!(node = %info.name, "node registered");
                    n
                }
                Err(kube::Error::Api(e)) if e.code == 409 => nodes.get(&info.name).await?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    // An agent taking over a Ready node keeps its transition time.
    let ready_since = existing
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready" && c.status == "True"))
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
        .unwrap_or_else(Timestamp::now);
    let now = Timestamp::now();
    let status = info.status(true, "KubeletReady", ready_since, now);
    nodes
        .patch_status(
            &info.name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": {"labels": info.labels()}, "status": status })),
        )
        .await?;
    let registered = Registered {
        uid: existing.metadata.uid,
        ready_since,
    };
    if let Err(e) = renew_lease(client, info, registered.uid.as_deref()).await {
        tracing::warn!(node = %info.name, error = %e, "cannot write the node lease yet");
    }
    Ok(registered)
}

async fn renew_lease(
    client: &kube::Client,
    info: &NodeInfo,
    node_uid: Option<&str>,
) -> Result<(), AgentError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let lease = info.lease(node_uid, Timestamp::now())?;
    let patch = json!({ "spec": lease.spec });
    match api
        .patch(&info.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Renews the lease and the status heartbeat until `stop`, re-registering a deleted Node; then
/// marks the Node NotReady.
pub async fn heartbeat(
    client: kube::Client,
    info: NodeInfo,
    mut registered: Registered,
    stop: CancellationToken,
) {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut lease_tick = tokio::time::interval(LEASE_RENEW);
    let mut status_tick = tokio::time::interval(STATUS_HEARTBEAT);
    lease_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = lease_tick.tick() => {
                if let Err(e) = renew_lease(&client, &info, registered.uid.as_deref()).await {
                    tracing::warn!(node = %info.name, error = %e, "cannot renew the node lease");
                }
            }
            _ = status_tick.tick() => {
                let status = info.status(true, "KubeletReady", registered.ready_since, Timestamp::now());
                match nodes
                    .patch_status(&info.name, &PatchParams::default(), &Patch::Merge(json!({ "status": status })))
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {
                        tracing::warn!(node = %info.name, "the node was deleted; registering it again");
                        match register(&client, &info).await {
                            Ok(r) => registered = r,
                            Err(e) => tracing::warn!(node = %info.name, error = %e, "cannot register the node"),
                        }
                    }
                    Err(e) => tracing::warn!(node = %info.name, error = %e, "cannot write the node status"),
                }
            }
        }
    }
    let now = Timestamp::now();
    let status = info.status(false, "NodeAgentStopped", now, now);
    match nodes
        .patch_status(
            &info.name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
    {
        Ok(_) => tracing::info!(node = %info.name, "node marked NotReady"),
        Err(e) => tracing::warn!(node = %info.name, error = %e, "cannot mark the node NotReady"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> NodeInfo {
        NodeInfo {
            name: "n1".into(),
            resources: HostResources {
                cpus: 2,
                memory_kib: 1024,
                ephemeral_storage_kib: Some(4096),
            },
            max_pods: 20000,
            kubelet_port: Some(10250),
            taints: Vec::new(),
        }
    }

    #[test]
    fn a_simulated_node_fits_max_pods_atservers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = host_resources(dir.path());
        let sim = simulated_resources(dir.path(), 20000);
        // 20,000 pods at the atServer's default request (10m CPU, 32 MiB) must fit.
        assert!(u64::from(sim.cpus) * 1000 >= 20000 * 10, "{sim:?}");
        assert!(sim.memory_kib >= 20000 * 32 * 1024, "{sim:?}");
        assert!(sim.cpus >= host.cpus && sim.memory_kib >= host.memory_kib);
    }

    #[test]
    fn meminfo() {
        let m = "MemFree:  10 kB\nMemTotal:       24576000 kB\n";
        assert_eq!(mem_total_kib(m), Some(24_576_000));
        assert_eq!(mem_total_kib("nothing"), None);
    }

    #[test]
    fn status_is_a_valid_ready_node_status() {
        let t0 = Timestamp::from_second(1_000_000_000).expect("t0");
        let now = Timestamp::from_second(1_000_000_100).expect("now");
        let st = info().status(true, "KubeletReady", t0, now);
        assert_eq!(st["capacity"]["pods"], "20000");
        assert_eq!(st["allocatable"]["cpu"], "2");
        assert_eq!(st["capacity"]["memory"], "1024Ki");
        assert_eq!(st["capacity"]["ephemeral-storage"], "4096Ki");
        assert_eq!(st["addresses"][0]["address"], "127.0.0.1");
        assert_eq!(st["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
        assert_eq!(st["nodeInfo"]["kubeletVersion"], "v1.37.2");
        let ready = &st["conditions"][3];
        assert_eq!(ready["type"], "Ready");
        assert_eq!(ready["status"], "True");
        assert_eq!(ready["lastTransitionTime"], "2001-09-09T01:46:40Z");
        assert_eq!(ready["lastHeartbeatTime"], "2001-09-09T01:48:20Z");
        // The typed Node accepts it.
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}, "status": st}))
            .expect("a Node");
        let conditions = node.status.and_then(|s| s.conditions).unwrap_or_default();
        assert!(conditions
            .iter()
            .filter(|c| c.type_ != "Ready")
            .all(|c| c.status == "False"));
        let stopped = info().status(false, "NodeAgentStopped", now, now);
        assert_eq!(stopped["conditions"][3]["status"], "False");
    }

    #[test]
    fn lease_has_micro_time_and_owner() {
        let now = Timestamp::from_second(1_000_000_000).expect("now");
        let lease = info().lease(Some("uid-1"), now).expect("lease");
        let v = serde_json::to_value(&lease).expect("json");
        assert_eq!(v["spec"]["renewTime"], "2001-09-09T01:46:40.000000Z");
        assert_eq!(v["spec"]["holderIdentity"], "n1");
        assert_eq!(v["spec"]["leaseDurationSeconds"], 40);
        assert_eq!(v["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(v["metadata"]["namespace"], "kube-node-lease");
    }
}
