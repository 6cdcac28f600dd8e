//! A container's environment: literal values, Secret and ConfigMap references, and the pod fields
//! the downward API offers.

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::Api;

use super::error::AgentError;
use super::volumes::Rewrites;

pub async fn resolve(
    client: &kube::Client,
    pod: &Pod,
    container: &Container,
    rewrites: &Rewrites,
) -> Result<Vec<(String, String)>, AgentError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut out = Vec::new();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let entries = if let Some(s) = &from.secret_ref {
            secret(client, &ns, &s.name, s.optional).await?
        } else if let Some(c) = &from.config_map_ref {
            config_map(client, &ns, &c.name, c.optional).await?
        } else {
            Vec::new()
        };
        out.extend(
            entries
                .into_iter()
                .map(|(k, v)| (format!("{prefix}{k}"), v)),
        );
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => var.value.clone().unwrap_or_default(),
            Some(src) => {
                if let Some(r) = &src.secret_key_ref {
                    let entries = secret(client, &ns, &r.name, r.optional).await?;
                    match lookup(entries, &r.key) {
                        Some(v) => v,
                        None if r.optional == Some(true) => continue,
                        None => return Err(missing_key("Secret", &ns, &r.name, &r.key)),
                    }
                } else if let Some(r) = &src.config_map_key_ref {
                    let entries = config_map(client, &ns, &r.name, r.optional).await?;
                    match lookup(entries, &r.key) {
                        Some(v) => v,
                        None if r.optional == Some(true) => continue,
                        None => return Err(missing_key("ConfigMap", &ns, &r.name, &r.key)),
                    }
                } else if let Some(f) = &src.field_ref {
                    field(pod, &f.field_path)?
                } else {
                    return Err(AgentError::Unsupported(format!(
                        "env {} (resourceFieldRef)",
                        var.name
                    )));
                }
            }
        };
        out.push((var.name.clone(), value));
    }
    Ok(out
        .into_iter()
        .map(|(k, v)| {
            let v = rewrites.apply(&v);
            (k, v)
        })
        .collect())
}

fn lookup(entries: Vec<(String, String)>, key: &str) -> Option<String> {
    entries.into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn missing_key(kind: &'static str, ns: &str, name: &str, key: &str) -> AgentError {
    AgentError::MissingKey {
        kind,
        namespace: ns.into(),
        name: name.into(),
        key: key.into(),
    }
}

async fn secret(
    client: &kube::Client,
    ns: &str,
    name: &str,
    optional: Option<bool>,
) -> Result<Vec<(String, String)>, AgentError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    match api.get_opt(name).await? {
        Some(s) => Ok(s
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect()),
        None if optional == Some(true) => Ok(Vec::new()),
        None => Err(AgentError::Missing {
            kind: "Secret",
            namespace: ns.into(),
            name: name.into(),
        }),
    }
}

async fn config_map(
    client: &kube::Client,
    ns: &str,
    name: &str,
    optional: Option<bool>,
) -> Result<Vec<(String, String)>, AgentError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    match api.get_opt(name).await? {
        Some(c) => Ok(c.data.unwrap_or_default().into_iter().collect()),
        None if optional == Some(true) => Ok(Vec::new()),
        None => Err(AgentError::Missing {
            kind: "ConfigMap",
            namespace: ns.into(),
            name: name.into(),
        }),
    }
}

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
