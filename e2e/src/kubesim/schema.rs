//! Structural-schema handling for custom resources, in the apiserver's order: prune unknown fields,
//! apply defaults, check types and value constraints, then run the CEL rules.

use kube::core::cel::{compile_schema, CompiledSchema};
use serde_json::{Map, Value};

use super::cel;

/// A custom resource version's structural schema, with its CEL rules compiled once (compiling
/// them on every write dominated the cost of a custom resource write).
#[derive(Debug)]
pub struct Schema {
    pub openapi: Value,
    rules: CompiledSchema,
}

impl Schema {
    pub fn new(openapi: Value) -> Self {
        let rules = compile_schema(&openapi);
        Self { openapi, rules }
    }
}

pub type Causes = Vec<(String, String)>;

/// The identity of the resource being validated, for CEL root variables.
pub struct Target<'a> {
    pub api_version: &'a str,
    pub group: &'a str,
    pub kind: &'a str,
}

/// Why an object was refused.
#[derive(Debug, PartialEq)]
pub enum Rejection {
    /// Field values that break the schema or its CEL rules: 422 Invalid.
    Invalid(Causes),
    /// Undeclared fields under strict field validation: 400 BadRequest.
    Unknown(Vec<String>),
}

/// Prunes, defaults and validates `object`; returns the object to store or why it was refused.
/// With `strict`, undeclared fields are an error instead of being dropped.
pub fn admit(
    compiled: &Schema,
    object: Value,
    old: Option<&Value>,
    target: &Target<'_>,
    strict: bool,
) -> Result<Value, Rejection> {
    let schema = &compiled.openapi;
    let mut object = object;
    let mut unknown = Vec::new();
    prune_root(schema, &mut object, &mut unknown);
    if strict && !unknown.is_empty() {
        return Err(Rejection::Unknown(unknown));
    }
    let mut object = kube::core::cel::apply_defaults(schema, &object);
    prune_root(schema, &mut object, &mut Vec::new());
    let mut causes = Causes::new();
    if let (Value::Object(props), Value::Object(map)) = (&schema["properties"], &object) {
        for (k, v) in map {
            if let Some(s) = props.get(k).filter(|_| k != "metadata") {
                check(s, v, k, &mut causes);
            }
        }
        required(schema, map, "", &mut causes);
    }
    if causes.is_empty() {
        causes.extend(cel::check(
            &compiled.rules,
            &object,
            old,
            target.api_version,
            target.group,
            target.kind,
        ));
    }
    if causes.is_empty() {
        Ok(object)
    } else {
        Err(Rejection::Invalid(causes))
    }
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn prune_root(schema: &Value, object: &mut Value, unknown: &mut Vec<String>) {
    if let Value::Object(map) = object {
        prune_map(schema, map, true, "", unknown);
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Drops fields the schema does not declare (keeping `apiVersion`/`kind`/`metadata` at the root and
/// in embedded resources) and nulls in non-nullable fields; records the undeclared fields in `unknown`.
fn prune_map(
    schema: &Value,
    map: &mut Map<String, Value>,
    resource: bool,
    path: &str,
    unknown: &mut Vec<String>,
) {
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields")
        || schema.get("additionalProperties") == Some(&Value::Bool(true));
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    let kept = |k: &str| resource && matches!(k, "apiVersion" | "kind" | "metadata");
    map.retain(|k, v| {
        if kept(k) {
            return true;
        }
        match props.and_then(|p| p.get(k)).or(additional) {
            Some(s) => !v.is_null() || flag(s, "nullable"),
            None if preserve => true,
            None => {
                unknown.push(join(path, k));
                false
            }
        }
    });
    for (k, v) in map.iter_mut() {
        if kept(k) {
            continue;
        }
        if let Some(s) = props.and_then(|p| p.get(k)).or(additional) {
            prune_value(s, v, &join(path, k), unknown);
        }
    }
}

fn prune_value(schema: &Value, value: &mut Value, path: &str, unknown: &mut Vec<String>) {
    match value {
        Value::Object(m) => {
            let embedded = flag(schema, "x-kubernetes-embedded-resource");
            prune_map(schema, m, embedded, path, unknown);
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_value(item_schema, item, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

fn invalid(causes: &mut Causes, path: &str, value: &Value, why: String) {
    causes.push((
        path.to_string(),
        format!("Invalid value: {}: {why}", show(value)),
    ));
}

fn type_ok(ty: &str, v: &Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    }
}

fn required(schema: &Value, map: &Map<String, Value>, path: &str, causes: &mut Causes) {
    for r in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = r.as_str().filter(|n| !map.contains_key(*n)) {
            let field = if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}.{name}")
            };
            causes.push((field, "Required value".into()));
        }
    }
}

/// Type and value constraints of one field.
fn check(schema: &Value, v: &Value, path: &str, causes: &mut Causes) {
    if v.is_null() {
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(v.is_string() || v.is_i64() || v.is_u64()) {
            invalid(
                causes,
                path,
                v,
                format!("{path} in body must be of type int-or-string"),
            );
        }
        return;
    }
    if let Some(ty) = schema.get("type").and_then(Value::as_str) {
        if !type_ok(ty, v) {
            invalid(
                causes,
                path,
                v,
                format!("{path} in body must be of type {ty}: {}", show(v)),
            );
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(v) {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            causes.push((
                path.into(),
                format!(
                    "Unsupported value: {}: supported values: {}",
                    show(v),
                    list.join(", ")
                ),
            ));
        }
    }
    let num = |k: &str| schema.get(k).and_then(Value::as_f64);
    match v {
        Value::String(s) => {
            let len = s.chars().count() as f64;
            if num("maxLength").is_some_and(|m| len > m) {
                invalid(
                    causes,
                    path,
                    v,
                    format!(
                        "{path} in body may not be longer than {}",
                        num("maxLength").unwrap_or_default()
                    ),
                );
            }
            if num("minLength").is_some_and(|m| len < m) {
                invalid(
                    causes,
                    path,
                    v,
                    format!(
                        "{path} in body should be at least {} chars long",
                        num("minLength").unwrap_or_default()
                    ),
                );
            }
            if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
                if regex::Regex::new(p).is_ok_and(|re| !re.is_match(s)) {
                    invalid(
                        causes,
                        path,
                        v,
                        format!("{path} in body should match '{p}'"),
                    );
                }
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            if let Some(max) = num("maximum") {
                if x > max || (flag(schema, "exclusiveMaximum") && x >= max) {
                    invalid(
                        causes,
                        path,
                        v,
                        format!("{path} in body should be less than or equal to {max}"),
                    );
                }
            }
            if let Some(min) = num("minimum") {
                if x < min || (flag(schema, "exclusiveMinimum") && x <= min) {
                    invalid(
                        causes,
                        path,
                        v,
                        format!("{path} in body should be greater than or equal to {min}"),
                    );
                }
            }
        }
        Value::Array(items) => {
            if num("maxItems").is_some_and(|m| items.len() as f64 > m) {
                invalid(
                    causes,
                    path,
                    v,
                    format!(
                        "{path} in body should have at most {} items",
                        num("maxItems").unwrap_or_default()
                    ),
                );
            }
            if num("minItems").is_some_and(|m| (items.len() as f64) < m) {
                invalid(
                    causes,
                    path,
                    v,
                    format!(
                        "{path} in body should have at least {} items",
                        num("minItems").unwrap_or_default()
                    ),
                );
            }
            if schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("set") {
                for (i, item) in items.iter().enumerate() {
                    if items.iter().take(i).any(|earlier| earlier == item) {
                        causes.push((format!("{path}[{i}]"), format!("Duplicate value: {item}")));
                    }
                }
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item_schema, item, &format!("{path}[{i}]"), causes);
                }
            }
        }
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, child) in map {
                if let Some(s) = props.and_then(|p| p.get(k)).or(additional) {
                    check(s, child, &format!("{path}.{k}"), causes);
                }
            }
            required(schema, map, path, causes);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T: Target<'static> = Target {
        api_version: "g/v1",
        group: "g",
        kind: "K",
    };

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["size"], "properties": {
            "size": {"type": "integer", "minimum": 1},
            "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}})
    }

    #[test]
    fn prunes_defaults_and_rejects() {
        let obj = json!({"apiVersion": "g/v1", "kind": "K", "metadata": {"name": "x"},
                         "spec": {"size": 2, "junk": 1, "extra": {"anything": true}}, "other": 1});
        let strict = admit(&Schema::new(schema()), obj.clone(), None, &T, true);
        assert_eq!(
            strict,
            Err(Rejection::Unknown(vec!["other".into(), "spec.junk".into()]))
        );
        let admitted = admit(&Schema::new(schema()), obj, None, &T, false).unwrap_or_default();
        assert_eq!(
            admitted["spec"],
            json!({"size": 2, "mode": "a", "extra": {"anything": true}})
        );
        assert!(admitted.get("other").is_none());
        assert_eq!(admitted["metadata"]["name"], "x");

        let bad = json!({"metadata": {"name": "x"}, "spec": {"size": "two", "mode": "c"}});
        let Err(Rejection::Invalid(causes)) = admit(&Schema::new(schema()), bad, None, &T, false)
        else {
            panic!("rejected")
        };
        let fields: Vec<&str> = causes.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, vec!["spec.mode", "spec.size"]);
        let missing = admit(&Schema::new(schema()), json!({"spec": {}}), None, &T, false);
        let required = vec![("spec.size".to_string(), "Required value".to_string())];
        assert_eq!(missing, Err(Rejection::Invalid(required)));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        #[test]
        fn admission_never_panics(size in any::<i64>(), mode in ".{0,5}", junk in any::<bool>(), extra in "[a-z]{0,5}") {
            let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
                "x-kubernetes-validations": [{"rule": "self.size < 100", "message": "small"}],
                "properties": {"size": {"type": "integer"}, "mode": {"type": "string", "pattern": "^[a-z]+$"},
                               "extra": {"type": "object", "additionalProperties": {"type": "string"}}}}}});
            let object = json!({"spec": {"size": size, "mode": mode, "junk": junk, "extra": {extra: size}}});
            let target = Target { api_version: "g/v1", group: "g", kind: "K" };
            let _ = admit(&Schema::new(schema), object.clone(), Some(&object), &target, junk);
        }
    }
}
