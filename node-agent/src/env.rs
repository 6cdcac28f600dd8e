//! A container's environment: literal values, Secret and ConfigMap references, and the pod fields
//! the downward API offers (read in downward.rs).

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::Api;

use super::downward;
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
                    downward::field(pod, &f.field_path)?
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
