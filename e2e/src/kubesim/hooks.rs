//! Per-kind server behaviour that real admission and registry strategies add: Secret `stringData`,
//! Service cluster IPs and NodePort allocation, initial phases, CustomResourceDefinition status and
//! registration of the resources a CRD declares.

use std::collections::BTreeSet;

use base64::Engine;
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::resources::{types_from_crd, GroupResource, ResourceType};
use super::state::{now, State};

const NODE_PORTS: std::ops::RangeInclusive<u64> = 30000..=32767;

/// Adjusts an object about to be written; `old` is the stored version, if any.
pub fn admit(
    state: &State,
    rt: &ResourceType,
    old: Option<&Value>,
    new: &mut Value,
) -> ApiResult<()> {
    if rt.custom {
        return Ok(());
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Secret") => secret(new),
        ("", "Service") => service(state, old, new)?,
        ("", "Namespace") => initial_status(old, new, json!({"phase": "Active"})),
        ("", "Pod") => initial_status(old, new, json!({"phase": "Pending"})),
        ("", "PersistentVolumeClaim") => initial_status(old, new, json!({"phase": "Pending"})),
        ("apps", "StatefulSet")
            if new["spec"].is_object() && new["spec"].get("replicas").is_none() =>
        {
            new["spec"]["replicas"] = json!(1);
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(old, new)?,
        _ => {}
    }
    Ok(())
}

fn initial_status(old: Option<&Value>, new: &mut Value, status: Value) {
    if old.is_none() && new.get("status").is_none_or(Value::is_null) {
        new["status"] = status;
    }
}

/// `stringData` is write-only: it is folded into `data`, base64-encoded.
fn secret(new: &mut Value) {
    let Some(string_data) = new.as_object_mut().and_then(|m| m.remove("stringData")) else {
        return;
    };
    let Value::Object(entries) = string_data else {
        return;
    };
    if !new["data"].is_object() {
        new["data"] = Value::Object(Map::new());
    }
    for (k, v) in entries {
        let plain = v
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| v.to_string());
        new["data"][k] = Value::String(base64::engine::general_purpose::STANDARD.encode(plain));
    }
}

fn service(state: &State, old: Option<&Value>, new: &mut Value) -> ApiResult<()> {
    if !new["spec"].is_object() {
        new["spec"] = json!({});
    }
    let spec = &mut new["spec"];
    if spec.get("type").is_none_or(Value::is_null) {
        spec["type"] = json!("ClusterIP");
    }
    let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    let uid = new["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let spec = &mut new["spec"];
    if spec["clusterIP"].as_str().is_none_or(str::is_empty) {
        let ip = old
            .and_then(|o| o["spec"]["clusterIP"].as_str().map(String::from))
            .unwrap_or_else(|| cluster_ip(&uid));
        spec["clusterIP"] = json!(ip);
    }
    if spec.get("clusterIPs").is_none() {
        spec["clusterIPs"] = json!([spec["clusterIP"].clone()]);
    }
    let wants_node_ports = ty == "NodePort" || ty == "LoadBalancer";
    // Scanning every Service for its node ports is only needed when allocating them: doing it
    // for each ClusterIP write made creating N Services quadratic.
    let mut used: BTreeSet<u64> = if !wants_node_ports {
        BTreeSet::new()
    } else {
        state
            .store
            .list(
                &GroupResource {
                    group: String::new(),
                    resource: "services".into(),
                },
                None,
            )
            .filter(|(_, s)| s["metadata"]["uid"].as_str() != Some(uid.as_str()))
            .flat_map(|(_, s)| s["spec"]["ports"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p["nodePort"].as_u64())
            .collect()
    };
    let old_ports = old
        .and_then(|o| o["spec"]["ports"].as_array().cloned())
        .unwrap_or_default();
    let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for (i, port) in ports.iter_mut().enumerate() {
        if !port.is_object() {
            let cause = (
                format!("spec.ports[{i}]"),
                "Invalid value: must be an object".to_string(),
            );
            return Err(ApiError::invalid("", "Service", "", vec![cause]));
        }
        if port.get("protocol").is_none() {
            port["protocol"] = json!("TCP");
        }
        if port.get("targetPort").is_none() {
            port["targetPort"] = port["port"].clone();
        }
        if !wants_node_ports {
            if let Some(m) = port.as_object_mut() {
                m.remove("nodePort");
            }
            continue;
        }
        let requested = port["nodePort"].as_u64().or_else(|| {
            old_ports
                .iter()
                .find(|o| o["port"] == port["port"])
                .and_then(|o| o["nodePort"].as_u64())
        });
        let chosen = match requested {
            Some(p) if !NODE_PORTS.contains(&p) => {
                return Err(ApiError::invalid("", "Service", "", vec![(format!("spec.ports[{i}].nodePort"), format!("Invalid value: {p}: provided port is not in the valid range. The range of valid ports is 30000-32767"))]));
            }
            Some(p) if used.contains(&p) => {
                return Err(ApiError::invalid(
                    "",
                    "Service",
                    "",
                    vec![(
                        format!("spec.ports[{i}].nodePort"),
                        format!("Invalid value: {p}: provided port is already allocated"),
                    )],
                ));
            }
            Some(p) => p,
            None => free_node_port(&used)
                .ok_or_else(|| ApiError::internal("no NodePort left in 30000-32767"))?,
        };
        used.insert(chosen);
        port["nodePort"] = json!(chosen);
    }
    Ok(())
}

/// An unallocated node port, scanning from a random start as the real allocator picks at random
/// (several simulated clusters on one machine then rarely choose the same ports). The only node
/// is this machine, where the process kubelet listens on node ports, so a port some other
/// program holds on 127.0.0.1 is passed over while others remain.
fn free_node_port(used: &BTreeSet<u64>) -> Option<u64> {
    let span = NODE_PORTS.end() - NODE_PORTS.start() + 1;
    let start = rand::random::<u64>() % span;
    let candidates = (0..span)
        .map(|i| NODE_PORTS.start() + (start + i) % span)
        .filter(|p| !used.contains(p));
    let bindable = |p: &u64| {
        u16::try_from(*p)
            .ok()
            .is_some_and(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
    };
    candidates
        .clone()
        .find(bindable)
        .or_else(|| candidates.clone().next())
}

/// A stable address in 10.96.0.0/16 derived from the service's uid.
fn cluster_ip(uid: &str) -> String {
    let h = uid.bytes().fold(0u32, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u32::from(b))
    });
    format!("10.96.{}.{}", (h >> 8) % 256, (h % 254) + 1)
}

/// Validates a CRD and marks it established, as the apiextensions controllers would.
fn crd(old: Option<&Value>, new: &mut Value) -> ApiResult<()> {
    let name = new["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let types = types_from_crd(new).map_err(|causes| {
        ApiError::invalid(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            &name,
            causes,
        )
    })?;
    let storage: Vec<Value> = new["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .map(|v| v["name"].clone())
        .collect();
    let at = now();
    // A condition that already held keeps its transition time, so re-applying a CRD is a no-op.
    let since = |ty: &str| {
        old.and_then(|o| o["status"]["conditions"].as_array())
            .and_then(|cs| cs.iter().find(|c| c["type"] == ty && c["status"] == "True"))
            .map(|c| c["lastTransitionTime"].clone())
            .unwrap_or_else(|| json!(at))
    };
    let condition = |ty: &str, reason: &str| json!({"type": ty, "status": "True", "lastTransitionTime": since(ty), "reason": reason, "message": ""});
    let terminating = new["metadata"].get("deletionTimestamp").is_some();
    let mut conditions = vec![
        condition("NamesAccepted", "NoConflicts"),
        condition("Established", "InitialNamesAccepted"),
    ];
    if terminating {
        conditions.push(condition("Terminating", "InstanceDeletionInProgress"));
    }
    new["status"] = json!({"conditions": conditions, "acceptedNames": new["spec"]["names"].clone(), "storedVersions": storage});
    if types.is_empty() {
        return Err(ApiError::invalid(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            &name,
            vec![(
                "spec.versions".into(),
                "Invalid value: at least one version must be served".into(),
            )],
        ));
    }
    Ok(())
}

/// Registers (or re-registers) the resources of a stored CRD.
pub fn after_write(state: &mut State, rt: &ResourceType, stored: &Value) {
    if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
        if let Ok(types) = types_from_crd(stored) {
            if let Some(first) = types.first() {
                let (group, plural) = (first.group.clone(), first.plural.clone());
                state.registry.set_custom(&group, &plural, types);
            }
        }
    }
}

/// Unregisters the resources of a removed CRD.
pub fn after_remove(state: &mut State, rt: &ResourceType, removed: &Value) {
    if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
        let spec = &removed["spec"];
        let group = spec["group"].as_str().unwrap_or_default().to_string();
        let plural = spec["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        state.registry.set_custom(&group, &plural, Vec::new());
    }
}

/// The group/resource whose objects a CRD object serves, if `object` is a CRD.
pub fn crd_contents(rt: &ResourceType, object: &Value) -> Option<GroupResource> {
    if rt.group != "apiextensions.k8s.io" || rt.kind != "CustomResourceDefinition" {
        return None;
    }
    let spec = &object["spec"];
    Some(GroupResource {
        group: spec["group"].as_str().unwrap_or_default().to_string(),
        resource: spec["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    })
}
