//! How a list field merges: atomically, as a set, or as a map keyed by some of its items' fields.
//! Custom resources say so in their schema (`x-kubernetes-list-type`); built-in kinds use the keys
//! the Kubernetes API declares for the fields the operator and kubelet touch.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// Resolves list kinds for one resource type.
#[derive(Debug, Clone, Copy)]
pub struct ListTypes<'a> {
    schema: Option<&'a Value>,
}

impl<'a> ListTypes<'a> {
    pub fn new(schema: Option<&'a Value>) -> Self {
        Self { schema }
    }

    /// `fields` is the chain of field names from the object root to the list (list items add nothing).
    pub fn kind(&self, fields: &[String]) -> ListKind {
        if let Some(k) = metadata_list(fields) {
            return k;
        }
        match self.schema {
            Some(schema) => schema_list(schema, fields),
            None => builtin_list(fields),
        }
    }
}

fn keys(names: &[&str]) -> ListKind {
    ListKind::Map(names.iter().map(|s| s.to_string()).collect())
}

fn metadata_list(fields: &[String]) -> Option<ListKind> {
    match fields {
        [m, f] if m == "metadata" && f == "finalizers" => Some(ListKind::Set),
        [m, f] if m == "metadata" && f == "ownerReferences" => Some(keys(&["uid"])),
        _ => None,
    }
}

fn builtin_list(fields: &[String]) -> ListKind {
    let last = fields.last().map(String::as_str).unwrap_or_default();
    let parent = fields
        .len()
        .checked_sub(2)
        .and_then(|i| fields.get(i))
        .map(String::as_str)
        .unwrap_or_default();
    match (parent, last) {
        (
            _,
            "containers"
            | "initContainers"
            | "ephemeralContainers"
            | "env"
            | "volumes"
            | "imagePullSecrets",
        ) => keys(&["name"]),
        (_, "volumeMounts") => keys(&["mountPath"]),
        (_, "volumeDevices") => keys(&["devicePath"]),
        (_, "conditions") => keys(&["type"]),
        ("containers" | "initContainers", "ports") => keys(&["containerPort", "protocol"]),
        ("spec", "ports") => keys(&["port", "protocol"]),
        (_, "topologySpreadConstraints") => keys(&["topologyKey", "whenUnsatisfiable"]),
        (_, "hostAliases") => keys(&["ip"]),
        _ => ListKind::Atomic,
    }
}

fn schema_list(schema: &Value, fields: &[String]) -> ListKind {
    let mut node = schema;
    for f in fields {
        if node.get("type").and_then(Value::as_str) == Some("array") {
            node = &node["items"];
        }
        node = match node.get("properties").and_then(|p| p.get(f)) {
            Some(n) => n,
            None => match node.get("additionalProperties") {
                Some(n) if n.is_object() => n,
                _ => return ListKind::Atomic,
            },
        };
    }
    match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => ListKind::Set,
        Some("map") => ListKind::Map(
            node["x-kubernetes-list-map-keys"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        _ => ListKind::Atomic,
    }
}

/// The key fields of a map-list item that are present, in sorted order.
pub fn item_key(item: &Value, key_names: &[String]) -> serde_json::Map<String, Value> {
    let mut names: Vec<&String> = key_names.iter().collect();
    names.sort();
    let mut key = serde_json::Map::new();
    for n in names {
        if let Some(v) = item.get(n.as_str()) {
            key.insert(n.clone(), v.clone());
        }
    }
    key
}

/// Whether a map-list item carries exactly the given key values.
pub fn item_matches(item: &Value, key: &serde_json::Map<String, Value>) -> bool {
    !key.is_empty() && key.iter().all(|(k, v)| item.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn builtin_and_schema_kinds() {
        let builtin = ListTypes::new(None);
        assert_eq!(
            builtin.kind(&path(&["spec", "template", "spec", "containers"])),
            keys(&["name"])
        );
        assert_eq!(
            builtin.kind(&path(&["spec", "ports"])),
            keys(&["port", "protocol"])
        );
        assert_eq!(
            builtin.kind(&path(&["spec", "containers", "args"])),
            ListKind::Atomic
        );
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
                      "items": {"type": "object", "properties": {"tags": {"type": "array", "x-kubernetes-list-type": "set"}}}}}}}});
        let custom = ListTypes::new(Some(&schema));
        assert_eq!(custom.kind(&path(&["spec", "items"])), keys(&["id"]));
        assert_eq!(
            custom.kind(&path(&["spec", "items", "tags"])),
            ListKind::Set
        );
        assert_eq!(
            custom.kind(&path(&["metadata", "finalizers"])),
            ListKind::Set
        );
    }
}
