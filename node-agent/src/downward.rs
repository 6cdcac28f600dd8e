//! The pod fields the downward API offers, for env `fieldRef`s and downward API volume files alike.
//! Its own module because env.rs imports volumes.rs (for `Rewrites`), so volumes.rs cannot import
//! env.rs back.

use k8s_openapi::api::core::v1::Pod;

use super::error::AgentError;

/// A downward API field of `pod` (what `fieldRef` may name).
pub(crate) fn field(pod: &Pod, path: &str) -> Result<String, AgentError> {
    let m = &pod.metadata;
    let subscript = |prefix: &str| {
        path.strip_prefix(prefix)?
            .strip_prefix("['")?
            .strip_suffix("']")
            .map(str::to_owned)
    };
    let render = |map: &Option<std::collections::BTreeMap<String, String>>| {
        map.iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    if let Some(k) = subscript("metadata.labels") {
        return Ok(m
            .labels
            .as_ref()
            .and_then(|l| l.get(&k).cloned())
            .unwrap_or_default());
    }
    if let Some(k) = subscript("metadata.annotations") {
        return Ok(m
            .annotations
            .as_ref()
            .and_then(|a| a.get(&k).cloned())
            .unwrap_or_default());
    }
    let value = match path {
        "metadata.name" => m.name.clone(),
        "metadata.namespace" => m.namespace.clone(),
        "metadata.uid" => m.uid.clone(),
        "metadata.labels" => Some(render(&m.labels)),
        "metadata.annotations" => Some(render(&m.annotations)),
        "spec.nodeName" => pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone()),
        "status.podIP" | "status.hostIP" | "status.podIPs" | "status.hostIPs" => {
            Some("127.0.0.1".into())
        }
        _ => {
            return Err(AgentError::Unsupported(format!("fieldRef {path}")));
        }
    };
    Ok(value.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downward_fields() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "n", "labels": {"a": "1", "b": "x y"}},
            "spec": {"containers": [], "nodeName": "local"},
        }))
        .expect("pod");
        assert_eq!(field(&pod, "metadata.name").expect("name"), "p");
        assert_eq!(field(&pod, "metadata.namespace").expect("ns"), "n");
        assert_eq!(field(&pod, "metadata.labels['a']").expect("label"), "1");
        assert_eq!(
            field(&pod, "metadata.labels").expect("labels"),
            "a=\"1\"\nb=\"x y\""
        );
        assert_eq!(field(&pod, "spec.nodeName").expect("node"), "local");
        assert!(field(&pod, "spec.nope").is_err());
    }
}
