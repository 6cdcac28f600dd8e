//! Service-account tokens for processes: bound tokens from the TokenRequest API written where the
//! pod's projected volume is, refreshed before 80% of their life, and a kubeconfig per pod that
//! points at them (a process cannot read the fixed in-cluster path
//! `/var/run/secrets/kubernetes.io/serviceaccount`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::error::{io, AgentError};

/// Where containers expect the service account's token, CA and namespace.
pub const SERVICE_ACCOUNT_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The token lifetime asked for when the projection names none (the API's default).
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;

/// A token file this agent keeps fresh.
#[derive(Debug, Clone)]
pub struct TokenFile {
    pub path: PathBuf,
    pub service_account: String,
    pub audiences: Vec<String>,
    pub expiration_seconds: i64,
    pub mode: u32,
    /// When to ask for the next token.
    pub refresh_at: Timestamp,
}

/// The files a service-account projected volume provides: the token and, when projected, the CA.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountFiles {
    pub token: PathBuf,
    pub ca: Option<PathBuf>,
}

/// Asks for a token of `service_account` bound to `pod`; returns the token and its expiry.
pub async fn request(
    client: &kube::Client,
    pod: &Pod,
    service_account: &str,
    audiences: &[String],
    expiration_seconds: Option<i64>,
) -> Result<(String, Timestamp), AgentError> {
    let ns = pod.namespace().unwrap_or_default();
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let tr: TokenRequest = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": audiences,
            "expirationSeconds": expiration_seconds.unwrap_or(DEFAULT_EXPIRATION_SECONDS),
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod.name_any(), "uid": pod.uid()},
        },
    }))
    .map_err(|e| AgentError::Unsupported(e.to_string()))?;
    let resp = api
        .create_token_request(service_account, &PostParams::default(), &tr)
        .await?;
    let status = resp.status.unwrap_or_default();
    match (status.token, status.expiration_timestamp) {
        (Some(token), Some(expires)) => Ok((token, expires.0)),
        _ => Err(AgentError::Unsupported(format!(
            "the token request for {ns}/{service_account} returned no token"
        ))),
    }
}

/// When a token issued at `issued` and expiring at `expires` is rewritten: after 80% of its life
/// (as the real kubelet does).
pub fn refresh_at(issued: Timestamp, expires: Timestamp) -> Timestamp {
    let life = expires.as_millisecond() - issued.as_millisecond();
    let at = issued.as_millisecond() + life.max(0) * 8 / 10;
    Timestamp::from_millisecond(at).unwrap_or(expires)
}

/// Writes `contents` to `path` through a temporary file and a rename, so a reader never sees a
/// partial token.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), AgentError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    std::fs::write(&tmp, contents).map_err(io(&tmp))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode | 0o400))
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Rewrites every token before 80% of its life until `stop`; a failed request is retried after
/// `retry` (the old token stays valid until it expires).
pub async fn keep_fresh(
    client: kube::Client,
    pod: Pod,
    mut tokens: Vec<TokenFile>,
    retry: Duration,
    stop: CancellationToken,
) {
    if tokens.is_empty() {
        return;
    }
    loop {
        let next = tokens
            .iter()
            .map(|t| t.refresh_at)
            .min()
            .unwrap_or_else(Timestamp::now);
        let wait =
            Duration::try_from(next.duration_since(Timestamp::now())).unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let now = Timestamp::now();
        for t in tokens.iter_mut().filter(|t| t.refresh_at <= now) {
            let result = request(
                &client,
                &pod,
                &t.service_account,
                &t.audiences,
                Some(t.expiration_seconds),
            )
            .await
            .and_then(|(token, expires)| {
                write_atomic(&t.path, token.as_bytes(), t.mode)?;
                Ok(expires)
            });
            match result {
                Ok(expires) => {
                    t.refresh_at = refresh_at(Timestamp::now(), expires);
                    tracing::debug!(pod = %pod.name_any(), path = %t.path.display(), "token refreshed");
                }
                Err(e) => {
                    tracing::warn!(pod = %pod.name_any(), error = %e, "cannot refresh a service-account token");
                    t.refresh_at = Timestamp::now()
                        .checked_add(jiff::SignedDuration::try_from(retry).unwrap_or_default())
                        .unwrap_or(now);
                }
            }
        }
    }
}

/// `https://127.0.0.1:6443/` → ("127.0.0.1", 6443); the port defaults by scheme.
pub fn host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let authority = rest.split('/').next()?;
    let default = if scheme == "http" { 80 } else { 443 };
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => default,
        };
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None if !authority.is_empty() => Some((authority.to_owned(), default)),
        None => None,
    }
}

/// The `KUBERNETES_SERVICE_*` variables the real kubelet sets, pointing at `api_server`.
pub fn service_env(api_server: &str) -> Vec<(String, String)> {
    let Some((host, port)) = host_port(api_server) else {
        return Vec::new();
    };
    vec![
        ("KUBERNETES_SERVICE_HOST".into(), host),
        ("KUBERNETES_SERVICE_PORT".into(), port.to_string()),
        ("KUBERNETES_SERVICE_PORT_HTTPS".into(), port.to_string()),
    ]
}

/// A kubeconfig for a process: the API server, the projected CA and the token file (which
/// kube-rs and client-go re-read as it is rewritten), in the pod's namespace.
pub fn kubeconfig(api_server: &str, files: &AccountFiles, namespace: &str) -> String {
    let mut cluster = json!({ "server": api_server });
    if let (Some(ca), Some(obj)) = (&files.ca, cluster.as_object_mut()) {
        obj.insert(
            "certificate-authority".into(),
            json!(ca.display().to_string()),
        );
    }
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": cluster}],
        "users": [{"name": "service-account", "user": {"tokenFile": files.token.display().to_string()}}],
        "contexts": [{"name": "pod", "context": {"cluster": "cluster", "user": "service-account", "namespace": namespace}}],
        "current-context": "pod",
    });
    serde_json::to_string_pretty(&config).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_after_80_percent() {
        let issued = Timestamp::from_second(1_000).expect("issued");
        let expires = Timestamp::from_second(1_000 + 3607).expect("expires");
        let at = refresh_at(issued, expires);
        assert_eq!(at.as_millisecond(), 1_000_000 + 3_607_000 * 8 / 10);
        assert_eq!(
            refresh_at(expires, issued),
            expires,
            "an expired token at once"
        );
    }

    #[test]
    fn urls() {
        assert_eq!(
            host_port("https://127.0.0.1:6443"),
            Some(("127.0.0.1".into(), 6443))
        );
        assert_eq!(
            host_port("https://example.com/"),
            Some(("example.com".into(), 443))
        );
        assert_eq!(host_port("https://[::1]:7000"), Some(("::1".into(), 7000)));
        assert_eq!(host_port("https://"), None);
        let env = service_env("https://127.0.0.1:6443");
        assert!(env.contains(&("KUBERNETES_SERVICE_PORT".into(), "6443".into())));
    }

    #[test]
    fn kubeconfig_names_the_files() {
        let files = AccountFiles {
            token: PathBuf::from("/p/token"),
            ca: Some(PathBuf::from("/p/ca.crt")),
        };
        let text = kubeconfig("https://127.0.0.1:6443", &files, "fleet");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            v["clusters"][0]["cluster"]["certificate-authority"],
            "/p/ca.crt"
        );
        assert_eq!(v["users"][0]["user"]["tokenFile"], "/p/token");
        assert_eq!(v["contexts"][0]["context"]["namespace"], "fleet");
    }

    #[test]
    fn atomic_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("sub").join("token");
        write_atomic(&p, b"one", 0o600).expect("write");
        write_atomic(&p, b"two", 0o600).expect("rewrite");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
    }
}
