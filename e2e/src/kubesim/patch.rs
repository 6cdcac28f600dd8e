//! Non-apply patches: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and strategic merge patch
//! for built-in kinds (merge patch whose keyed lists merge item by item).

use serde_json::Value;

use super::lists::{item_key, item_matches, ListKind, ListTypes};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        match base {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("invalid JSON patch: {0}")]
    Json(String),
    #[error("the patch must be a JSON object")]
    NotAnObject,
}

/// Applies a merge, JSON or strategic patch to `target`.
pub fn patch(
    target: &mut Value,
    kind: PatchType,
    body: &Value,
    lists: ListTypes<'_>,
) -> Result<(), PatchError> {
    match kind {
        PatchType::Merge => {
            if !body.is_object() {
                return Err(PatchError::NotAnObject);
            }
            json_patch::merge(target, body);
            Ok(())
        }
        PatchType::Json => {
            // A `test` for null passes on an absent field, as on the real apiserver (kube-runtime's
            // finalizer helper relies on it when adding the first finalizer).
            let mut body = body.clone();
            if let Value::Array(ops) = &mut body {
                ops.retain(|op| {
                    let absent = op["path"]
                        .as_str()
                        .is_some_and(|p| target.pointer(p).is_none());
                    !(op["op"] == "test" && op["value"].is_null() && absent)
                });
            }
            let ops: json_patch::Patch =
                serde_json::from_value(body).map_err(|e| PatchError::Json(e.to_string()))?;
            json_patch::patch(target, &ops).map_err(|e| PatchError::Json(e.to_string()))
        }
        PatchType::Strategic | PatchType::Apply => {
            if !body.is_object() {
                return Err(PatchError::NotAnObject);
            }
            strategic(target, body, &mut Vec::new(), lists);
            Ok(())
        }
    }
}

/// Strategic merge: `null` deletes, maps merge, keyed lists merge by key (an item carrying
/// `"$patch": "delete"` removes its match), other lists are replaced. `$`-prefixed directives that
/// only affect ordering are ignored.
fn strategic(target: &mut Value, patch: &Value, names: &mut Vec<String>, lists: ListTypes<'_>) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let Value::Object(t) = target else { return };
    for (k, pv) in p {
        if k.starts_with('$') {
            continue;
        }
        if pv.is_null() {
            t.remove(k);
            continue;
        }
        names.push(k.clone());
        match (t.get_mut(k), pv) {
            (Some(Value::Array(items)), Value::Array(patch_items)) => match lists.kind(names) {
                ListKind::Map(key_names) => {
                    for pi in patch_items {
                        let key = item_key(pi, &key_names);
                        let delete = pi.get("$patch").and_then(Value::as_str) == Some("delete");
                        if delete {
                            items.retain(|i| !item_matches(i, &key));
                        } else if let Some(existing) =
                            items.iter_mut().find(|i| item_matches(i, &key))
                        {
                            strategic(existing, pi, names, lists);
                        } else {
                            let mut fresh = Value::Object(Default::default());
                            strategic(&mut fresh, pi, names, lists);
                            items.push(fresh);
                        }
                    }
                }
                _ => *items = patch_items.clone(),
            },
            (Some(existing @ Value::Object(_)), Value::Object(_)) => {
                strategic(existing, pv, names, lists)
            }
            (_, _) => {
                let mut fresh = Value::Null;
                strategic(&mut fresh, pv, names, lists);
                t.insert(k.clone(), fresh);
            }
        }
        names.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut pod = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}});
        let body = json!({"spec": {"containers": [{"name": "b", "image": "2"}, {"name": "a", "$patch": "delete"}]}});
        patch(&mut pod, PatchType::Strategic, &body, ListTypes::new(None)).ok();
        assert_eq!(
            pod,
            json!({"spec": {"containers": [{"name": "b", "image": "2"}]}})
        );
    }

    #[test]
    fn merge_and_json_patch() {
        let mut obj = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        patch(
            &mut obj,
            PatchType::Merge,
            &json!({"metadata": {"labels": {"a": null}}}),
            ListTypes::new(None),
        )
        .ok();
        assert_eq!(obj["metadata"]["labels"], json!({"b": "2"}));
        let ops = json!([{"op": "replace", "path": "/metadata/labels/b", "value": "3"}]);
        patch(&mut obj, PatchType::Json, &ops, ListTypes::new(None)).ok();
        assert_eq!(obj["metadata"]["labels"]["b"], "3");
        let first = json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
                           {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}]);
        patch(&mut obj, PatchType::Json, &first, ListTypes::new(None)).ok();
        assert_eq!(obj["metadata"]["finalizers"], json!(["f"]));
        let bad = json!([{"op": "remove", "path": "/nope"}]);
        assert!(patch(&mut obj, PatchType::Json, &bad, ListTypes::new(None)).is_err());
    }
}
