//! Server-side apply and field ownership: `metadata.managedFields` bookkeeping for apply and for
//! ordinary writes (update, patch), conflict detection, and removal of fields an applier dropped.

use serde_json::{json, Map, Value};

use super::fieldset::{self, FieldSet, Path};
use super::lists::{item_key, item_matches, ListKind, ListTypes};

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    manager: String,
    operation: String,
    subresource: String,
    api_version: String,
    time: String,
    set: FieldSet,
}

fn entries_of(object: Option<&Value>) -> Vec<Entry> {
    let Some(list) = object.and_then(|o| o["metadata"]["managedFields"].as_array()) else {
        return Vec::new();
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    list.iter()
        .map(|e| Entry {
            manager: text(&e["manager"]),
            operation: text(&e["operation"]),
            subresource: text(&e["subresource"]),
            api_version: text(&e["apiVersion"]),
            time: text(&e["time"]),
            set: fieldset::decode(&e["fieldsV1"]),
        })
        .collect()
}

fn write_entries(object: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    let list: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            let mut v = json!({
                "manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": fieldset::encode(&e.set),
            });
            if let (false, Some(m)) = (e.subresource.is_empty(), v.as_object_mut()) {
                m.insert("subresource".into(), Value::String(e.subresource));
            }
            v
        })
        .collect();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Who writes, and how.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    pub manager: &'a str,
    /// `""` for the main resource, `"status"` for the status subresource.
    pub subresource: &'a str,
    pub api_version: &'a str,
    pub now: &'a str,
}

/// A server-side apply conflict: `(manager, field)` pairs.
pub type Conflicts = Vec<(String, String)>;

/// Applies `config` on top of `live` (or on nothing, for create-on-apply) and returns the new object
/// with updated `managedFields`. `base` is the object to start from when there is no live object.
pub fn apply(
    live: Option<&Value>,
    base: Value,
    config: &Value,
    lists: ListTypes<'_>,
    force: bool,
    who: &Writer<'_>,
) -> Result<Value, Conflicts> {
    let mut entries = entries_of(live);
    let applied = fieldset::fields_of(config, lists);
    let mine = |e: &Entry| {
        e.manager == who.manager && e.operation == "Apply" && e.subresource == who.subresource
    };

    let mut conflicts = Conflicts::new();
    let mut contested: Vec<Path> = Vec::new();
    if let Some(live) = live {
        for e in entries.iter().filter(|e| !mine(e)) {
            for p in applied.intersection(&e.set) {
                let wanted = fieldset::get(config, p);
                if wanted.is_some_and(Value::is_object) {
                    continue;
                }
                if wanted != fieldset::get(live, p) {
                    conflicts.push((e.manager.clone(), fieldset::display(p)));
                    contested.push(p.clone());
                }
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for e in entries.iter_mut().filter(|e| !mine(e)) {
        for p in &contested {
            e.set.remove(p);
        }
    }

    let mut merged = live.cloned().unwrap_or(base);
    merge(&mut merged, config, &mut Vec::new(), lists);

    let previous = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let others: FieldSet = entries
        .iter()
        .filter(|e| !mine(e))
        .flat_map(|e| e.set.iter().cloned())
        .collect();
    let mut dropped: Vec<&Path> = previous
        .iter()
        .filter(|p| !applied.contains(*p) && !others.contains(*p))
        .collect();
    dropped.sort_by_key(|p| p.len());
    for p in dropped {
        fieldset::remove(&mut merged, p);
    }

    entries.retain(|e| !mine(e));
    entries.push(Entry {
        manager: who.manager.into(),
        operation: "Apply".into(),
        subresource: who.subresource.into(),
        api_version: who.api_version.into(),
        time: who.now.into(),
        set: applied,
    });
    write_entries(&mut merged, entries);
    Ok(merged)
}

/// Records an ordinary write (PUT or non-apply PATCH): the writer takes ownership of every field it
/// changed, other managers lose those fields, and removed fields leave every manager.
pub fn record_update(old: Option<&Value>, new: &mut Value, lists: ListTypes<'_>, who: &Writer<'_>) {
    let mut entries = entries_of(old);
    let before = old
        .map(|o| fieldset::fields_of(o, lists))
        .unwrap_or_default();
    let after = fieldset::fields_of(new, lists);
    let changed: FieldSet = after
        .iter()
        .filter(|p| {
            let now = fieldset::get(new, p);
            !before.contains(*p)
                || (!now.is_some_and(Value::is_object)
                    && old.and_then(|o| fieldset::get(o, p)) != now)
        })
        .cloned()
        .collect();
    let mine = |e: &Entry| {
        e.manager == who.manager && e.operation == "Update" && e.subresource == who.subresource
    };
    for e in entries.iter_mut() {
        e.set.retain(|p| after.contains(p));
        if !mine(e) {
            e.set.retain(|p| !changed.contains(p));
        }
    }
    if !changed.is_empty() {
        match entries.iter_mut().find(|e| mine(e)) {
            Some(e) => {
                e.set.extend(changed);
                e.time = who.now.into();
                e.api_version = who.api_version.into();
            }
            None => entries.push(Entry {
                manager: who.manager.into(),
                operation: "Update".into(),
                subresource: who.subresource.into(),
                api_version: who.api_version.into(),
                time: who.now.into(),
                set: changed,
            }),
        }
    }
    write_entries(new, entries);
}

/// Merges an applied configuration into an object: maps key by key, map-lists item by key, sets by
/// union; scalars and atomic lists are replaced.
pub fn merge(target: &mut Value, config: &Value, names: &mut Vec<String>, lists: ListTypes<'_>) {
    let (Value::Object(t), Value::Object(c)) = (&mut *target, config) else {
        *target = config.clone();
        return;
    };
    for (k, cv) in c {
        names.push(k.clone());
        match t.get_mut(k) {
            Some(tv) => merge_value(tv, cv, names, lists),
            None => {
                t.insert(k.clone(), cv.clone());
            }
        }
        names.pop();
    }
}

fn merge_value(target: &mut Value, config: &Value, names: &mut Vec<String>, lists: ListTypes<'_>) {
    match (&mut *target, config) {
        (Value::Object(_), Value::Object(_)) => merge(target, config, names, lists),
        (Value::Array(items), Value::Array(wanted)) => match lists.kind(names) {
            ListKind::Atomic => *target = config.clone(),
            ListKind::Set => {
                for w in wanted {
                    if !items.contains(w) {
                        items.push(w.clone());
                    }
                }
            }
            ListKind::Map(key_names) => {
                for w in wanted {
                    let key: Map<String, Value> = item_key(w, &key_names);
                    match items.iter_mut().find(|i| item_matches(i, &key)) {
                        Some(existing) => merge(existing, w, names, lists),
                        None => items.push(w.clone()),
                    }
                }
            }
        },
        _ => *target = config.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(manager: &str) -> Writer<'_> {
        Writer {
            manager,
            subresource: "",
            api_version: "v1",
            now: "2026-01-01T00:00:00Z",
        }
    }

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data})
    }

    #[test]
    fn conflicts_force_and_removal() {
        let lists = ListTypes::new(None);
        let base = cm(json!({}));
        let a = apply(
            None,
            base.clone(),
            &cm(json!({"x": "1", "y": "1"})),
            lists,
            false,
            &who("a"),
        )
        .unwrap_or_default();
        assert_eq!(
            a["metadata"]["managedFields"][0]["fieldsV1"]["f:data"]["f:x"],
            json!({})
        );
        // b sets x to a different value: conflict unless forced.
        let err = apply(
            Some(&a),
            base.clone(),
            &cm(json!({"x": "2"})),
            lists,
            false,
            &who("b"),
        );
        assert_eq!(err, Err(vec![("a".to_string(), ".data.x".to_string())]));
        // b agrees on y: shared ownership, no conflict.
        let b = apply(
            Some(&a),
            base.clone(),
            &cm(json!({"y": "1"})),
            lists,
            false,
            &who("b"),
        )
        .unwrap_or_default();
        // a drops both fields: x goes away, y stays because b owns it too.
        let a2 = apply(Some(&b), base, &cm(json!({})), lists, false, &who("a")).unwrap_or_default();
        assert_eq!(a2["data"], json!({"y": "1"}));
    }

    #[test]
    fn updates_take_ownership() {
        let lists = ListTypes::new(None);
        let a = apply(
            None,
            cm(json!({})),
            &cm(json!({"x": "1"})),
            lists,
            false,
            &who("a"),
        )
        .unwrap_or_default();
        let mut edited = a.clone();
        edited["data"]["x"] = json!("9");
        record_update(Some(&a), &mut edited, lists, &who("editor"));
        let managers: Vec<&str> = edited["metadata"]["managedFields"]
            .as_array()
            .map(|l| l.iter().filter_map(|e| e["manager"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(managers, vec!["editor"]);
    }
}
