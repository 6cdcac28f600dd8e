//! The OpenAPI v3 documents kubectl reads. kubectl uses them to learn whether the server validates
//! fields itself (`fieldValidation` on each kind's PATCH operation, tagged with
//! `x-kubernetes-group-version-kind`); when it does, kubectl skips client-side schema validation, which
//! would otherwise need the protobuf-encoded v2 document. Custom resources also get their schema as a
//! component so `kubectl explain` can describe them.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use serde_json::{json, Map, Value};

use super::resources::{Registry, ResourceType};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: one entry per group version, its URL carrying a content hash for client caches.
pub fn root(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in registry.groups() {
        for version in versions {
            let doc = group_version(registry, &group, &version).unwrap_or(Value::Null);
            let mut h = DefaultHasher::new();
            doc.to_string().hash(&mut h);
            let p = gv_path(&group, &version);
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={:016X}", h.finish())}),
            );
        }
    }
    json!({"paths": paths})
}

fn schema_name(t: &ResourceType) -> String {
    let reversed: Vec<&str> = t.group.split('.').rev().collect();
    let prefix = if t.group.is_empty() {
        "io.k8s.api.core".to_string()
    } else {
        reversed.join(".")
    };
    format!("{prefix}.{}.{}", t.version, t.kind)
}

fn operations(t: &ResourceType) -> Value {
    let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
    let param = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string"}, "uniqueItems": true});
    let schema_ref = json!({"$ref": format!("#/components/schemas/{}", schema_name(t))});
    let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": schema_ref}}}});
    json!({
        "get": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "get", "responses": ok},
        "put": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "put", "responses": ok,
                "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation")]},
        "patch": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "patch", "responses": ok,
                  "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation"), param("force")]},
        "delete": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "delete", "responses": {"200": {"description": "OK"}}},
    })
}

/// The document of one group version, or `None` when nothing is served there.
pub fn group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<&ResourceType> = registry
        .all()
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for t in types {
        let base = format!("/{}", gv_path(group, version));
        let item = if t.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("{base}/{}/{{name}}", t.plural)
        };
        paths.insert(item, operations(t));
        let mut schema = t.schema.as_ref().map(|s| s.openapi.clone()).unwrap_or_else(
            || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
        if let Some(m) = schema.as_object_mut() {
            m.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": t.group, "version": t.version, "kind": t.kind}]),
            );
        }
        schemas.insert(schema_name(t), schema);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0-kubesim"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
