//! Deletion: preconditions, finalizers and deletionTimestamp, propagation policies, pod grace
//! periods, and namespaces and CRDs that wait for their contents.

use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::gc;
use super::hooks;
use super::objects::{key, view};
use super::resources::ResourceType;
use super::state::{namespaces, now, State, SYSTEM_NAMESPACES};
use super::store::ObjectKey;

/// Body or query of a DELETE.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOptions {
    pub propagation_policy: Option<String>,
    pub grace_period_seconds: Option<i64>,
    #[serde(default)]
    pub preconditions: Preconditions,
    #[serde(default)]
    pub dry_run: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

/// Namespaces and CRDs are only removed once the objects they contain are gone.
pub fn has_contents(state: &State, rt: &ResourceType, object: &Value) -> bool {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    if rt.group.is_empty() && rt.kind == "Namespace" {
        return state
            .store
            .all()
            .any(|(gr, (ns, _), _)| ns == name && *gr != namespaces());
    }
    match hooks::crd_contents(rt, object) {
        Some(gr) => state.store.list(&gr, None).next().is_some(),
        None => false,
    }
}

/// Deletes an object, honouring finalizers, propagation policy and pod grace periods, then runs
/// garbage collection. Returns the object while it is still being deleted, or a success `Status`.
pub fn delete(
    state: &mut State,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
    options: &DeleteOptions,
) -> ApiResult<Value> {
    let result = delete_one(state, rt, &key(rt, namespace, name), options)?;
    if !options.dry_run.is_empty() {
        return Ok(result);
    }
    gc::sweep(state);
    match state
        .store
        .get(&rt.group_resource(), &key(rt, namespace, name))
    {
        Some(o) if o["metadata"]["uid"] == result["metadata"]["uid"] => Ok(view(rt, o.clone())),
        _ => Ok(json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": name, "group": rt.group, "kind": rt.plural, "uid": result["metadata"]["uid"]},
        })),
    }
}

/// Marks or removes one object without running garbage collection; returns the object as it was
/// last stored (or removed).
pub fn delete_one(
    state: &mut State,
    rt: &ResourceType,
    key: &ObjectKey,
    options: &DeleteOptions,
) -> ApiResult<Value> {
    let gr = rt.group_resource();
    let name = key.1.clone();
    let mut object = state
        .store
        .get(&gr, key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, &name))?;
    let meta = &object["metadata"];
    if let Some(uid) = &options.preconditions.uid {
        if meta["uid"].as_str() != Some(uid.as_str()) {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.plural,
                &name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta["uid"].as_str().unwrap_or_default()
                ),
            ));
        }
    }
    if let Some(rv) = &options.preconditions.resource_version {
        if meta["resourceVersion"].as_str() != Some(rv.as_str()) {
            return Err(ApiError::conflict(&rt.group, &rt.plural, &name, "the object has been modified; please apply your changes to the latest version and try again"));
        }
    }
    if rt.group.is_empty()
        && rt.kind == "Namespace"
        && SYSTEM_NAMESPACES[..2].contains(&name.as_str())
    {
        return Err(ApiError::forbidden(format!(
            "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
        )));
    }
    let mut finalizers: Vec<Value> = meta["finalizers"].as_array().cloned().unwrap_or_default();
    let policy_finalizer = match options.propagation_policy.as_deref() {
        Some("Foreground") => Some("foregroundDeletion"),
        Some("Orphan") => Some("orphan"),
        _ => None,
    };
    let deleting = meta.get("deletionTimestamp").is_some();
    if let Some(f) = policy_finalizer {
        if !deleting && !finalizers.iter().any(|x| x == f) {
            finalizers.push(json!(f));
        }
    }
    let is_pod = rt.group.is_empty() && rt.kind == "Pod";
    let scheduled = is_pod
        && object["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty());
    let grace = options
        .grace_period_seconds
        .or_else(|| object["spec"]["terminationGracePeriodSeconds"].as_i64())
        .unwrap_or(if is_pod { 30 } else { 0 });
    let graceful = scheduled && grace > 0;
    let dry_run = !options.dry_run.is_empty();
    if finalizers.is_empty() && !graceful && !has_contents(state, rt, &object) {
        if dry_run {
            return Ok(object);
        }
        let removed = state.store.remove(&gr, key).unwrap_or(object);
        hooks::after_remove(state, rt, &removed);
        return Ok(removed);
    }
    if deleting
        && object["metadata"]["finalizers"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
            == finalizers.len()
    {
        return Ok(object);
    }
    if let Some(m) = object["metadata"].as_object_mut() {
        if !deleting {
            m.insert("deletionTimestamp".into(), json!(now()));
            m.insert(
                "deletionGracePeriodSeconds".into(),
                json!(if graceful { grace } else { 0 }),
            );
        }
        if finalizers.is_empty() {
            m.remove("finalizers");
        } else {
            m.insert("finalizers".into(), Value::Array(finalizers));
        }
    }
    if rt.group.is_empty() && rt.kind == "Namespace" {
        object["status"] = json!({"phase": "Terminating"});
    }
    if rt.group == "apiextensions.k8s.io" {
        let _ = hooks::admit(state, rt, None, &mut object);
    }
    if dry_run {
        return Ok(object);
    }
    Ok(state.store.put(&gr, key.clone(), object))
}
