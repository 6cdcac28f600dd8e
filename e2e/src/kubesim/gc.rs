//! Garbage collection, run synchronously after every deletion until nothing changes: dependents whose
//! owners are all gone are deleted (background cascade), dangling owner references are dropped,
//! `foregroundDeletion` waits for dependents, `orphan` releases them, and terminating namespaces and
//! CRDs empty themselves before they go.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::deletion::{self, DeleteOptions};
use super::resources::GroupResource;
use super::state::{namespaces, State};
use super::store::ObjectKey;

enum Action {
    Delete(GroupResource, ObjectKey),
    DropOwners(GroupResource, ObjectKey, Vec<String>),
    RemoveFinalizer(GroupResource, ObjectKey, &'static str),
    Finish(GroupResource, ObjectKey),
}

const MAX_ROUNDS: usize = 10_000;

pub fn sweep(state: &mut State) {
    for _ in 0..MAX_ROUNDS {
        let actions = plan(state);
        if actions.is_empty() {
            return;
        }
        for action in actions {
            perform(state, action);
        }
    }
    tracing::warn!("garbage collection did not settle");
}

fn owners(object: &Value) -> Vec<String> {
    object["metadata"]["ownerReferences"]
        .as_array()
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r["uid"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn deleting(object: &Value) -> bool {
    object["metadata"].get("deletionTimestamp").is_some()
}

fn has_finalizer(object: &Value, name: &str) -> bool {
    object["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == name))
}

fn plan(state: &State) -> Vec<Action> {
    let mut live: HashSet<String> = HashSet::new();
    let mut dependents: HashMap<String, Vec<(GroupResource, ObjectKey, bool)>> = HashMap::new();
    for (gr, key, object) in state.store.all() {
        if let Some(uid) = object["metadata"]["uid"].as_str() {
            live.insert(uid.to_string());
        }
        for owner in owners(object) {
            dependents
                .entry(owner)
                .or_default()
                .push((gr.clone(), key.clone(), deleting(object)));
        }
    }
    let mut actions = Vec::new();
    for (gr, key, object) in state.store.all() {
        let refs = owners(object);
        let missing: Vec<String> = refs
            .iter()
            .filter(|u| !live.contains(*u))
            .cloned()
            .collect();
        if !refs.is_empty() && missing.len() == refs.len() {
            if !deleting(object) {
                actions.push(Action::Delete(gr.clone(), key.clone()));
            }
        } else if !missing.is_empty() {
            actions.push(Action::DropOwners(gr.clone(), key.clone(), missing));
        }
        if !deleting(object) {
            continue;
        }
        let uid = object["metadata"]["uid"].as_str().unwrap_or_default();
        let deps = dependents.get(uid).map(Vec::as_slice).unwrap_or_default();
        if has_finalizer(object, "foregroundDeletion") {
            if deps.is_empty() {
                actions.push(Action::RemoveFinalizer(
                    gr.clone(),
                    key.clone(),
                    "foregroundDeletion",
                ));
            }
            for (dgr, dkey, dying) in deps {
                if !dying {
                    actions.push(Action::Delete(dgr.clone(), dkey.clone()));
                }
            }
        }
        if has_finalizer(object, "orphan") {
            for (dgr, dkey, _) in deps {
                actions.push(Action::DropOwners(
                    dgr.clone(),
                    dkey.clone(),
                    vec![uid.to_string()],
                ));
            }
            actions.push(Action::RemoveFinalizer(gr.clone(), key.clone(), "orphan"));
        }
        let contents: Vec<(GroupResource, ObjectKey, bool)> = if *gr == namespaces() {
            state
                .store
                .all()
                .filter(|(g, (ns, _), _)| ns == &key.1 && **g != namespaces())
                .map(|(g, k, o)| (g.clone(), k.clone(), deleting(o)))
                .collect()
        } else if let Some(content_gr) = state
            .registry
            .any_version(gr)
            .and_then(|rt| super::hooks::crd_contents(rt, object))
        {
            state
                .store
                .list(&content_gr, None)
                .map(|(k, o)| (content_gr.clone(), k.clone(), deleting(o)))
                .collect()
        } else {
            continue;
        };
        if contents.is_empty() {
            if object["metadata"]["finalizers"]
                .as_array()
                .is_none_or(Vec::is_empty)
            {
                actions.push(Action::Finish(gr.clone(), key.clone()));
            }
        } else {
            for (cgr, ckey, dying) in contents {
                if !dying {
                    actions.push(Action::Delete(cgr, ckey));
                }
            }
        }
    }
    actions
}

fn perform(state: &mut State, action: Action) {
    match action {
        Action::Delete(gr, key) => {
            if let Some(rt) = state.registry.any_version(&gr).cloned() {
                if let Err(e) = deletion::delete_one(state, &rt, &key, &DeleteOptions::default()) {
                    tracing::debug!(error = %e, "garbage collector could not delete");
                }
            }
        }
        Action::DropOwners(gr, key, uids) => edit(state, &gr, &key, |object| {
            if let Some(refs) = object["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|r| {
                    !r["uid"]
                        .as_str()
                        .is_some_and(|u| uids.iter().any(|x| x == u))
                });
            }
            if object["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(Vec::is_empty)
            {
                if let Some(m) = object["metadata"].as_object_mut() {
                    m.remove("ownerReferences");
                }
            }
        }),
        Action::RemoveFinalizer(gr, key, name) => edit(state, &gr, &key, |object| {
            if let Some(f) = object["metadata"]["finalizers"].as_array_mut() {
                f.retain(|x| x != name);
            }
        }),
        Action::Finish(gr, key) => {
            if let Some(removed) = state.store.remove(&gr, &key) {
                if let Some(rt) = state.registry.any_version(&gr).cloned() {
                    super::hooks::after_remove(state, &rt, &removed);
                }
            }
        }
    }
}

/// Changes an object's metadata as the garbage collector; removes it when that releases the last
/// finalizer of an object being deleted.
fn edit(state: &mut State, gr: &GroupResource, key: &ObjectKey, change: impl FnOnce(&mut Value)) {
    let Some(mut object) = state.store.get(gr, key).cloned() else {
        return;
    };
    let before = object.clone();
    change(&mut object);
    if object == before {
        return;
    }
    let empty = object["metadata"]["finalizers"]
        .as_array()
        .is_none_or(Vec::is_empty);
    if let (true, Some(m)) = (empty, object["metadata"].as_object_mut()) {
        m.remove("finalizers");
    }
    let contents = state
        .registry
        .any_version(gr)
        .is_some_and(|rt| deletion::has_contents(state, rt, &object));
    if deleting(&object) && empty && !contents {
        if let Some(removed) = state.store.remove(gr, key) {
            if let Some(rt) = state.registry.any_version(gr).cloned() {
                super::hooks::after_remove(state, &rt, &removed);
            }
        }
    } else {
        state.store.put(gr, key.clone(), object);
    }
}
