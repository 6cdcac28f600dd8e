//! The `/scale` subresource (autoscaling/v1 `Scale`) of StatefulSets, Deployments and custom
//! resources whose CRD declares one: a view of the replica count that writes back into the object.

use serde_json::{json, Map, Value};

use super::resources::ScalePaths;

fn at<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    path.trim_start_matches('.')
        .split('.')
        .try_fold(object, |v, seg| v.get(seg))
}

/// `k=v,k2=v2` from a `LabelSelector`'s `matchLabels`.
fn selector_string(selector: &Value) -> String {
    selector["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// The `Scale` view of an object.
pub fn view(paths: &ScalePaths, object: &Value) -> Value {
    let meta = &object["metadata"];
    let selector = match &paths.label_selector {
        Some(p) => at(object, p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        None => selector_string(&object["spec"]["selector"]),
    };
    json!({
        "apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
                     "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"]},
        "spec": {"replicas": at(object, &paths.spec_replicas).and_then(Value::as_i64).unwrap_or(0)},
        "status": {"replicas": at(object, &paths.status_replicas).and_then(Value::as_i64).unwrap_or(0), "selector": selector},
    })
}

/// A merge patch for the main resource that sets the replica count (and keeps the caller's
/// resourceVersion precondition, if any).
pub fn merge_patch(paths: &ScalePaths, scale: &Value) -> Option<Value> {
    let replicas = scale["spec"]["replicas"].as_i64()?;
    let mut patch = json!(replicas);
    for seg in paths.spec_replicas.trim_start_matches('.').split('.').rev() {
        let mut m = Map::new();
        m.insert(seg.to_string(), patch);
        patch = Value::Object(m);
    }
    if let (Some(rv), Some(m)) = (
        scale["metadata"]["resourceVersion"].as_str(),
        patch.as_object_mut(),
    ) {
        m.insert("metadata".into(), json!({"resourceVersion": rv}));
    }
    Some(patch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statefulset_scale() {
        let paths = ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: None,
        };
        let sts = json!({"metadata": {"name": "s", "resourceVersion": "7"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}}}, "status": {"replicas": 1}});
        let scale = view(&paths, &sts);
        assert_eq!(
            (
                scale["spec"]["replicas"].as_i64(),
                scale["status"]["selector"].as_str()
            ),
            (Some(2), Some("app=x"))
        );
        let mut wanted = scale.clone();
        wanted["spec"]["replicas"] = json!(5);
        let patch = merge_patch(&paths, &wanted);
        assert_eq!(
            patch,
            Some(json!({"spec": {"replicas": 5}, "metadata": {"resourceVersion": "7"}}))
        );
    }
}
