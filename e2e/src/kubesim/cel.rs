//! `x-kubernetes-validations` rules, evaluated with kube's client-side CEL engine (`kube::core::cel`,
//! the kube-cel crate): the full Kubernetes CEL library, transition rules against `oldSelf`, and
//! schema-aware formats.

use kube::core::cel::{CompiledSchema, RootContext, Validator};
use serde_json::Value;

/// Runs every CEL rule of `schema` against `object` (and `old` for transition rules); returns the
/// failures as `(field, message)`.
pub fn check(
    schema: &CompiledSchema,
    object: &Value,
    old: Option<&Value>,
    api_version: &str,
    group: &str,
    kind: &str,
) -> Vec<(String, String)> {
    let root = RootContext {
        api_version: api_version.into(),
        api_group: group.into(),
        kind: kind.into(),
    };
    match Validator::new().validate_compiled_with_context(schema, object, old, Some(&root)) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .into_vec()
            .into_iter()
            .map(|e| {
                let field = if e.field_path.is_empty() {
                    "<root>".to_string()
                } else {
                    e.field_path
                };
                (field, format!("Invalid value: \"object\": {}", e.message))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::cel::compile_schema;
    use serde_json::json;

    #[test]
    fn transition_and_match_rules() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "atsign": {"type": "string", "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "atsign is immutable"},
                {"rule": "self.matches('^@[a-z0-9_]+$')", "message": "atsign must start with @"}]},
            "replicas": {"type": "integer", "x-kubernetes-validations": [{"rule": "self <= 1", "message": "at most one"}]}}}}});
        let compiled = compile_schema(&schema);
        let old = json!({"spec": {"atsign": "@alice", "replicas": 1}});
        assert!(check(&compiled, &old, None, "v1", "g", "K").is_empty());
        let new = json!({"spec": {"atsign": "@bob", "replicas": 2}});
        let errors = check(&compiled, &new, Some(&old), "v1", "g", "K");
        let messages: Vec<&str> = errors.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(errors.len(), 2, "{messages:?}");
        let bad = json!({"spec": {"atsign": "alice"}});
        assert_eq!(check(&compiled, &bad, None, "v1", "g", "K").len(), 1);
    }
}
