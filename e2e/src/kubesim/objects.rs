//! Object writes: create, update and patch (including server-side apply), with resourceVersion
//! preconditions, generation, status-subresource rules and completion of finalized deletions.
//! Every function runs under the server lock.

use serde_json::{json, Value};

use super::apply::{self, Writer};
use super::deletion::has_contents;
use super::error::{ApiError, ApiResult};
use super::events;
use super::gc;
use super::hooks;
use super::lists::ListTypes;
use super::patch::{self, PatchType};
use super::resources::ResourceType;
use super::schema::{self, Rejection};
use super::state::{now, State};
use super::store::ObjectKey;

/// Who is writing and whether to persist.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub manager: String,
    pub dry_run: bool,
    /// `fieldValidation=Strict`: undeclared fields of custom resources are an error.
    pub strict: bool,
}

pub fn key(rt: &ResourceType, namespace: &str, name: &str) -> ObjectKey {
    let ns = if rt.namespaced {
        namespace.to_string()
    } else {
        String::new()
    };
    (ns, name.to_string())
}

/// The object as served at `rt`'s version (custom resources are stored once for all versions).
pub fn view(rt: &ResourceType, mut object: Value) -> Value {
    if let Some(m) = object.as_object_mut() {
        m.insert("apiVersion".into(), json!(rt.api_version()));
        m.insert("kind".into(), json!(rt.kind));
    }
    if rt.is_new_event() {
        return events::from_core(object);
    }
    object
}

pub fn get(state: &State, rt: &ResourceType, namespace: &str, name: &str) -> ApiResult<Value> {
    state
        .store
        .get(&rt.group_resource(), &key(rt, namespace, name))
        .cloned()
        .map(|o| view(rt, o))
        .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))
}

fn meta(object: &mut Value) -> ApiResult<&mut serde_json::Map<String, Value>> {
    let obj = object
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
    let meta = obj.entry("metadata").or_insert_with(|| json!({}));
    if meta.is_null() {
        *meta = json!({});
    }
    meta.as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))
}

fn writable_namespace(state: &State, rt: &ResourceType, namespace: &str) -> ApiResult<()> {
    if !rt.namespaced {
        return Ok(());
    }
    match state.namespace(namespace) {
        None => Err(ApiError::not_found("", "namespaces", namespace)),
        Some(ns) if ns["metadata"].get("deletionTimestamp").is_some() => Err(ApiError::forbidden(format!(
            "{} \"{}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
            rt.plural, rt.kind
        ))),
        Some(_) => Ok(()),
    }
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let id = uuid::Uuid::new_v4();
    id.as_bytes()
        .iter()
        .take(5)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

pub fn create(
    state: &mut State,
    rt: &ResourceType,
    namespace: &str,
    mut body: Value,
    opts: &WriteOptions,
) -> ApiResult<Value> {
    let m = meta(&mut body)?;
    if rt.namespaced {
        match m.get("namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() && ns != namespace => {
                return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
            }
            _ => {}
        }
    }
    let name = match (
        m.get("name").and_then(Value::as_str),
        m.get("generateName").and_then(Value::as_str),
    ) {
        (Some(n), _) if !n.is_empty() => n.to_string(),
        (_, Some(prefix)) if !prefix.is_empty() => format!("{prefix}{}", random_suffix()),
        _ => {
            return Err(ApiError::invalid(
                &rt.group,
                &rt.kind,
                "",
                vec![(
                    "metadata.name".into(),
                    "Required value: name or generateName is required".into(),
                )],
            ))
        }
    };
    writable_namespace(state, rt, namespace)?;
    let k = key(rt, namespace, &name);
    if state.store.get(&rt.group_resource(), &k).is_some() {
        return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
    }
    let (api_version, time) = (rt.api_version(), now());
    let who = Writer {
        manager: &opts.manager,
        subresource: "",
        api_version: &api_version,
        now: &time,
    };
    commit(state, rt, k, None, body, Manage::Update(&who), opts)
}

pub fn update(
    state: &mut State,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
    mut body: Value,
    status: bool,
    opts: &WriteOptions,
) -> ApiResult<Value> {
    let m = meta(&mut body)?;
    if m.get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| n != name)
    {
        return Err(ApiError::bad_request(
            "the name of the object does not match the name on the URL",
        ));
    }
    let k = key(rt, namespace, name);
    let old = state
        .store
        .get(&rt.group_resource(), &k)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
    let (api_version, time) = (rt.api_version(), now());
    let subresource = if status { "status" } else { "" };
    let who = Writer {
        manager: &opts.manager,
        subresource,
        api_version: &api_version,
        now: &time,
    };
    let mode = if status {
        Manage::Status(&who)
    } else {
        Manage::Update(&who)
    };
    commit(state, rt, k, Some(&old), body, mode, opts)
}

#[allow(clippy::too_many_arguments)]
pub fn patch(
    state: &mut State,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
    kind: PatchType,
    body: Value,
    status: bool,
    force: bool,
    opts: &WriteOptions,
) -> ApiResult<Value> {
    let k = key(rt, namespace, name);
    let old = state.store.get(&rt.group_resource(), &k).cloned();
    let lists = ListTypes::new(rt.schema.as_ref().map(|s| &s.openapi));
    let subresource = if status { "status" } else { "" };
    let (api_version, time) = (rt.api_version(), now());
    let who = Writer {
        manager: &opts.manager,
        subresource,
        api_version: &api_version,
        now: &time,
    };
    if kind == PatchType::Apply {
        return server_side_apply(
            state, rt, namespace, name, old, body, status, force, opts, &who,
        );
    }
    if kind == PatchType::Strategic && rt.custom {
        return Err(ApiError::unsupported_media_type(
            "application/strategic-merge-patch+json",
        ));
    }
    let old = old.ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
    let mut new = view(rt, old.clone());
    patch::patch(&mut new, kind, &body, lists).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mode = if status {
        Manage::Status(&who)
    } else {
        Manage::Update(&who)
    };
    commit(state, rt, k, Some(&old), new, mode, opts)
}

#[allow(clippy::too_many_arguments)]
fn server_side_apply(
    state: &mut State,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
    old: Option<Value>,
    mut config: Value,
    status: bool,
    force: bool,
    opts: &WriteOptions,
    who: &Writer<'_>,
) -> ApiResult<Value> {
    if opts.manager.is_empty() {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "PatchOptions",
            "",
            vec![(
                "fieldManager".into(),
                "Required value: is required for apply patch".into(),
            )],
        ));
    }
    let m = meta(&mut config)?;
    if m.get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| n != name)
    {
        return Err(ApiError::bad_request(
            "the name of the object does not match the name on the URL",
        ));
    }
    if m.contains_key("managedFields") {
        return Err(ApiError::bad_request(
            "metadata.managedFields must be nil in an apply configuration",
        ));
    }
    for server_field in [
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
        "name",
        "namespace",
    ] {
        m.remove(server_field);
    }
    if let Some(obj) = config.as_object_mut() {
        obj.remove("apiVersion");
        obj.remove("kind");
        if status {
            obj.retain(|k, _| k == "status" || k == "metadata");
            if let Some(Value::Object(m)) = obj.get_mut("metadata") {
                m.clear();
            }
        } else if rt.status {
            obj.remove("status");
        }
    }
    let k = key(rt, namespace, name);
    if old.is_none() {
        if status {
            return Err(ApiError::not_found(&rt.group, &rt.plural, name));
        }
        writable_namespace(state, rt, namespace)?;
    }
    let base = json!({"apiVersion": rt.api_version(), "kind": rt.kind, "metadata": {"name": name}});
    let lists = ListTypes::new(rt.schema.as_ref().map(|s| &s.openapi));
    let live = old.as_ref().map(|o| view(rt, o.clone()));
    let merged = apply::apply(live.as_ref(), base, &config, lists, force, who)
        .map_err(|conflicts| ApiError::apply_conflict(&rt.group, &rt.plural, name, conflicts))?;
    let mode = if status {
        Manage::AppliedStatus
    } else {
        Manage::Applied
    };
    commit(state, rt, k, old.as_ref(), merged, mode, opts)
}

/// How field ownership is recorded for a write.
enum Manage<'a> {
    /// An ordinary write of the main resource.
    Update(&'a Writer<'a>),
    /// An ordinary write of the status subresource: only `.status` is taken from the body.
    Status(&'a Writer<'a>),
    /// Server-side apply already computed `managedFields`.
    Applied,
    AppliedStatus,
}

fn strip_volatile(mut object: Value) -> Value {
    if let Some(m) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        if let Some(Value::Array(entries)) = m.get_mut("managedFields") {
            for e in entries.iter_mut().filter_map(Value::as_object_mut) {
                e.remove("time");
            }
        }
    }
    object
}

fn spec_part(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(m) = copy.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    copy
}

const SERVER_METADATA: [&str; 5] = [
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
];

/// Validates and stores a new version of an object (create when `old` is `None`).
fn commit(
    state: &mut State,
    rt: &ResourceType,
    key: ObjectKey,
    old: Option<&Value>,
    mut new: Value,
    manage: Manage<'_>,
    opts: &WriteOptions,
) -> ApiResult<Value> {
    let (namespace, name) = key.clone();
    let status_write = matches!(manage, Manage::Status(_) | Manage::AppliedStatus);
    let api_version = if rt.is_new_event() {
        new = events::to_core(new);
        "v1".to_string()
    } else {
        rt.api_version()
    };
    if let Some(obj) = new.as_object_mut() {
        obj.insert("apiVersion".into(), json!(api_version));
        obj.insert("kind".into(), json!(rt.kind));
    }
    let m = meta(&mut new)?;
    m.insert("name".into(), json!(name));
    if rt.namespaced {
        m.insert("namespace".into(), json!(namespace));
    } else {
        m.remove("namespace");
    }
    match old {
        Some(old) => {
            let stored_rv = old["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default();
            if let Some(rv) = m
                .get("resourceVersion")
                .and_then(Value::as_str)
                .filter(|rv| !rv.is_empty())
            {
                if rv != stored_rv {
                    return Err(ApiError::conflict(&rt.group, &rt.plural, &name, "the object has been modified; please apply your changes to the latest version and try again"));
                }
            }
            for f in SERVER_METADATA {
                match old["metadata"].get(f) {
                    Some(v) => m.insert(f.into(), v.clone()),
                    None => m.remove(f),
                };
            }
            if old["metadata"].get("deletionTimestamp").is_some() {
                let before: Vec<&Value> = old["metadata"]["finalizers"]
                    .as_array()
                    .map(|a| a.iter().collect())
                    .unwrap_or_default();
                let after = m
                    .get("finalizers")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if after.iter().any(|f| !before.contains(&f)) {
                    return Err(ApiError::forbidden(format!(
                        "{} \"{name}\" is being deleted: no new finalizers can be added",
                        rt.plural
                    )));
                }
            }
            if status_write {
                let status = new.get("status").cloned();
                let managed = new["metadata"].get("managedFields").cloned();
                new = old.clone();
                set_status(&mut new, status);
                if let (Manage::AppliedStatus, Some(m)) = (&manage, new["metadata"].as_object_mut())
                {
                    match managed {
                        Some(v) => m.insert("managedFields".into(), v),
                        None => m.remove("managedFields"),
                    };
                }
            } else if rt.status {
                set_status(&mut new, old.get("status").cloned());
            }
        }
        None => {
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(now()));
            for f in [
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "resourceVersion",
            ] {
                m.remove(f);
            }
            if rt.tracks_generation() {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
            if rt.status {
                set_status(&mut new, None);
            }
        }
    }
    hooks::admit(state, rt, old, &mut new).map_err(|mut e| {
        if let Some(Value::Object(d)) = e.details.as_mut() {
            d.insert("name".into(), json!(name));
        }
        e
    })?;
    if let Some(schema) = &rt.schema {
        let target = schema::Target {
            api_version: &rt.api_version(),
            group: &rt.group,
            kind: &rt.kind,
        };
        let old_view = old.map(|o| view(rt, o.clone()));
        new = schema::admit(schema, new, old_view.as_ref(), &target, opts.strict).map_err(
            |rejection| match rejection {
                Rejection::Invalid(causes) => ApiError::invalid(&rt.group, &rt.kind, &name, causes),
                Rejection::Unknown(fields) => {
                    let list: Vec<String> = fields
                        .iter()
                        .map(|f| format!("unknown field \"{f}\""))
                        .collect();
                    ApiError::bad_request(format!("strict decoding error: {}", list.join(", ")))
                }
            },
        )?;
    }
    if let Some(old) = old {
        if rt.tracks_generation() && spec_part(old) != spec_part(&new) {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            new["metadata"]["generation"] = json!(generation);
        }
    }
    if let Manage::Update(who) | Manage::Status(who) = manage {
        apply::record_update(
            old,
            &mut new,
            ListTypes::new(rt.schema.as_ref().map(|s| &s.openapi)),
            who,
        );
    }
    if let Some(old) = old {
        if strip_volatile(old.clone()) == strip_volatile(new.clone()) {
            return Ok(view(rt, old.clone()));
        }
    }
    if opts.dry_run {
        return Ok(view(rt, new));
    }
    let deleting = new["metadata"].get("deletionTimestamp").is_some();
    let no_finalizers = new["metadata"]["finalizers"]
        .as_array()
        .is_none_or(Vec::is_empty);
    if deleting && no_finalizers && !has_contents(state, rt, &new) {
        if let Some(removed) = state.store.remove(&rt.group_resource(), &key) {
            hooks::after_remove(state, rt, &removed);
        }
        gc::sweep(state);
        return Ok(view(rt, new));
    }
    let stored = state.store.put(&rt.group_resource(), key, new);
    hooks::after_write(state, rt, &stored);
    Ok(view(rt, stored))
}

fn set_status(object: &mut Value, status: Option<Value>) {
    if let Some(m) = object.as_object_mut() {
        match status {
            Some(s) if !s.is_null() => m.insert("status".into(), s),
            _ => m.remove("status"),
        };
    }
}
