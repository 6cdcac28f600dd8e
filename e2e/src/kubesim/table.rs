//! Server-side printing (`Accept: application/json;as=Table;...`), which `kubectl get` asks for:
//! name, the CRD's additional printer columns (simple `.a.b` JSON paths), and age.

use serde_json::{json, Value};

use super::resources::ResourceType;

fn age(created: &str) -> String {
    let Ok(then) = created.parse::<jiff::Timestamp>() else {
        return "<unknown>".into();
    };
    let secs = jiff::Timestamp::now()
        .as_second()
        .saturating_sub(then.as_second())
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn json_path(object: &Value, path: &str) -> Value {
    let found = path
        .trim_start_matches('.')
        .split('.')
        .try_fold(object, |v, seg| v.get(seg));
    match found {
        Some(Value::String(s)) => json!(s),
        Some(Value::Null) | None => json!("<none>"),
        Some(other) => other.clone(),
    }
}

fn columns(rt: &ResourceType) -> Vec<Value> {
    let mut cols = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}),
    ];
    for c in &rt.printer_columns {
        cols.push(json!({
            "name": c["name"], "type": "string", "format": "", "description": c["description"].as_str().unwrap_or_default(),
            "priority": c["priority"].as_i64().unwrap_or(0),
        }));
    }
    cols.push(
        json!({"name": "Age", "type": "string", "format": "", "description": "Age", "priority": 0}),
    );
    cols
}

fn row(rt: &ResourceType, object: &Value) -> Value {
    let meta = &object["metadata"];
    let mut cells = vec![meta["name"].clone()];
    for c in &rt.printer_columns {
        cells.push(json_path(
            object,
            c["jsonPath"].as_str().unwrap_or_default(),
        ));
    }
    cells.push(json!(age(meta["creationTimestamp"]
        .as_str()
        .unwrap_or_default())));
    json!({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}})
}

fn table(rt: &ResourceType, rows: Vec<Value>, metadata: Value) -> Value {
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": columns(rt), "rows": rows})
}

pub fn single(rt: &ResourceType, object: &Value) -> Value {
    table(
        rt,
        vec![row(rt, object)],
        json!({"resourceVersion": object["metadata"]["resourceVersion"]}),
    )
}

pub fn list(rt: &ResourceType, list: &Value) -> Value {
    let rows = list["items"]
        .as_array()
        .map(|items| items.iter().map(|o| row(rt, o)).collect())
        .unwrap_or_default();
    table(rt, rows, list["metadata"].clone())
}
