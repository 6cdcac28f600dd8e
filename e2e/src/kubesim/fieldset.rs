//! Field paths and sets in the structured-merge-diff sense, with the `fieldsV1` encoding used in
//! `metadata.managedFields` (`f:` field, `k:` map-list key, `v:` set value, `i:` index, `.` self).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::lists::{item_key, item_matches, ListKind, ListTypes};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElem {
    Field(String),
    /// Canonical JSON of the key fields of a map-list item.
    Key(String),
    /// Canonical JSON of a set member.
    Value(String),
    Index(usize),
}

pub type Path = Vec<PathElem>;
pub type FieldSet = BTreeSet<Path>;

/// Human-readable form used in conflict messages, e.g. `.spec.containers[name="app"].image`.
pub fn display(path: &Path) -> String {
    let mut out = String::new();
    for e in path {
        match e {
            PathElem::Field(f) => {
                out.push('.');
                out.push_str(f);
            }
            PathElem::Key(k) => {
                let pairs: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                    .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    .unwrap_or_default();
                out.push_str(&format!("[{}]", pairs.join(",")));
            }
            PathElem::Value(v) => out.push_str(&format!("[={v}]")),
            PathElem::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Metadata fields that belong to the server or the object's identity are never managed.
fn tracked(path: &Path) -> bool {
    match path.as_slice() {
        [PathElem::Field(f)] if f == "apiVersion" || f == "kind" => false,
        [PathElem::Field(m), PathElem::Field(f), ..] if m == "metadata" => {
            matches!(
                f.as_str(),
                "labels" | "annotations" | "finalizers" | "ownerReferences"
            )
        }
        [PathElem::Field(m)] if m == "metadata" => false,
        _ => true,
    }
}

/// The set of fields an object (or an applied configuration) sets.
pub fn fields_of(object: &Value, lists: ListTypes<'_>) -> FieldSet {
    let mut out = FieldSet::new();
    if let Value::Object(map) = object {
        walk_object(map, &mut Vec::new(), &mut Vec::new(), lists, &mut out);
    }
    out.retain(tracked);
    out
}

fn walk_object(
    map: &Map<String, Value>,
    path: &mut Path,
    names: &mut Vec<String>,
    lists: ListTypes<'_>,
    out: &mut FieldSet,
) {
    for (k, child) in map {
        path.push(PathElem::Field(k.clone()));
        names.push(k.clone());
        match child {
            Value::Object(m) if !m.is_empty() => walk_object(m, path, names, lists, out),
            Value::Array(items) if !items.is_empty() => match lists.kind(names) {
                ListKind::Atomic => {
                    out.insert(path.clone());
                }
                ListKind::Set => {
                    for item in items {
                        let mut p = path.clone();
                        p.push(PathElem::Value(item.to_string()));
                        out.insert(p);
                    }
                }
                ListKind::Map(key_names) => {
                    for item in items {
                        let key = item_key(item, &key_names);
                        path.push(PathElem::Key(Value::Object(key).to_string()));
                        out.insert(path.clone());
                        if let Value::Object(m) = item {
                            walk_object(m, path, names, lists, out);
                        }
                        path.pop();
                    }
                }
            },
            _ => {
                out.insert(path.clone());
            }
        }
        names.pop();
        path.pop();
    }
}

fn encode_elem(e: &PathElem) -> String {
    match e {
        PathElem::Field(f) => format!("f:{f}"),
        PathElem::Key(k) => format!("k:{k}"),
        PathElem::Value(v) => format!("v:{v}"),
        PathElem::Index(i) => format!("i:{i}"),
    }
}

fn decode_elem(s: &str) -> Option<PathElem> {
    let (tag, rest) = s.split_once(':')?;
    Some(match tag {
        "f" => PathElem::Field(rest.to_string()),
        "k" => PathElem::Key(serde_json::from_str::<Value>(rest).ok()?.to_string()),
        "v" => PathElem::Value(serde_json::from_str::<Value>(rest).ok()?.to_string()),
        "i" => PathElem::Index(rest.parse().ok()?),
        _ => return None,
    })
}

/// Encodes a set as a `fieldsV1` tree.
pub fn encode(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for e in path {
            let entry = node
                .entry(encode_elem(e))
                .or_insert_with(|| Value::Object(Map::new()));
            node = match entry {
                Value::Object(m) => m,
                _ => break,
            };
        }
    }
    for path in set {
        if let Some(node) = node_at(&mut root, path) {
            if !node.is_empty() && !node.contains_key(".") {
                node.insert(".".into(), Value::Object(Map::new()));
            }
        }
    }
    Value::Object(root)
}

fn node_at<'a>(
    root: &'a mut Map<String, Value>,
    path: &Path,
) -> Option<&'a mut Map<String, Value>> {
    let mut node = root;
    for e in path {
        node = node.get_mut(&encode_elem(e))?.as_object_mut()?;
    }
    Some(node)
}

/// Decodes a `fieldsV1` tree; malformed entries are skipped.
pub fn decode(tree: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    decode_into(tree, &mut Vec::new(), &mut out);
    out
}

fn decode_into(node: &Value, path: &mut Path, out: &mut FieldSet) {
    let Value::Object(map) = node else { return };
    for (k, child) in map {
        if k == "." {
            continue;
        }
        let Some(elem) = decode_elem(k) else { continue };
        path.push(elem);
        let leaf = child
            .as_object()
            .is_none_or(|m| m.is_empty() || m.contains_key("."));
        if leaf {
            out.insert(path.clone());
        }
        decode_into(child, path, out);
        path.pop();
    }
}

fn step<'a>(v: &'a Value, e: &PathElem) -> Option<&'a Value> {
    match e {
        PathElem::Field(f) => v.get(f),
        PathElem::Key(k) => {
            let key: Map<String, Value> = serde_json::from_str(k).ok()?;
            v.as_array()?.iter().find(|item| item_matches(item, &key))
        }
        PathElem::Value(s) => {
            let want: Value = serde_json::from_str(s).ok()?;
            v.as_array()?.iter().find(|item| **item == want)
        }
        PathElem::Index(i) => v.get(i),
    }
}

/// The value at a path, if present.
pub fn get<'a>(v: &'a Value, path: &Path) -> Option<&'a Value> {
    path.iter().try_fold(v, step)
}

fn step_mut<'a>(v: &'a mut Value, e: &PathElem) -> Option<&'a mut Value> {
    match e {
        PathElem::Field(f) => v.get_mut(f),
        PathElem::Key(k) => {
            let key: Map<String, Value> = serde_json::from_str(k).ok()?;
            v.as_array_mut()?
                .iter_mut()
                .find(|item| item_matches(item, &key))
        }
        PathElem::Value(s) => {
            let want: Value = serde_json::from_str(s).ok()?;
            v.as_array_mut()?.iter_mut().find(|item| **item == want)
        }
        PathElem::Index(i) => v.get_mut(i),
    }
}

/// Removes the value at a path; absent paths are ignored.
pub fn remove(v: &mut Value, path: &Path) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let Some(parent) = parent_path.iter().try_fold(v, step_mut) else {
        return;
    };
    match (last, parent) {
        (PathElem::Field(f), Value::Object(m)) => {
            m.remove(f);
        }
        (PathElem::Key(k), Value::Array(items)) => {
            if let Ok(key) = serde_json::from_str::<Map<String, Value>>(k) {
                items.retain(|item| !item_matches(item, &key));
            }
        }
        (PathElem::Value(s), Value::Array(items)) => {
            if let Ok(want) = serde_json::from_str::<Value>(s) {
                items.retain(|item| *item != want);
            }
        }
        (PathElem::Index(i), Value::Array(items)) if *i < items.len() => {
            items.remove(*i);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_round_trip_through_fields_v1() {
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "a", "labels": {"app": "x"}, "finalizers": ["f1"]},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}
        });
        let set = fields_of(&obj, ListTypes::new(None));
        let encoded = encode(&set);
        assert_eq!(
            encoded["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["."],
            json!({})
        );
        assert_eq!(encoded["f:metadata"]["f:finalizers"]["v:\"f1\""], json!({}));
        assert!(encoded.get("f:kind").is_none());
        assert_eq!(decode(&encoded), set);
        let image: Path = vec![
            PathElem::Field("spec".into()),
            PathElem::Field("template".into()),
            PathElem::Field("spec".into()),
            PathElem::Field("containers".into()),
            PathElem::Key("{\"name\":\"c\"}".into()),
            PathElem::Field("image".into()),
        ];
        assert_eq!(get(&obj, &image), Some(&json!("i")));
        assert_eq!(
            display(&image),
            ".spec.template.spec.containers[name=\"c\"].image"
        );
        let mut copy = obj.clone();
        remove(&mut copy, &image[..5].to_vec());
        assert_eq!(copy["spec"]["template"]["spec"]["containers"], json!([]));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-zA-Z:.]{1,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn fields_v1_round_trips(object in json_value()) {
            let set = fields_of(&object, ListTypes::new(None));
            prop_assert_eq!(decode(&encode(&set)), set);
        }

        #[test]
        fn decoding_arbitrary_trees_never_panics(tree in json_value()) {
            let set = decode(&tree);
            let mut target = tree.clone();
            for p in &set {
                let _ = get(&tree, p);
                remove(&mut target, p);
            }
        }
    }
}
