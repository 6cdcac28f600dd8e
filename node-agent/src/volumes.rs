//! A pod's volumes as local directories: Secrets, ConfigMaps, downward API files and projected
//! volumes (service-account tokens included) written as files, emptyDirs under the pod's
//! directory, claims as the directory of their PersistentVolume; and the rewriting of
//! in-container paths and ports in args and env to their local stand-ins.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, DownwardAPIVolumeFile, KeyToPath, PersistentVolume,
    PersistentVolumeClaim, Pod, Secret,
};
use kube::{Api, ResourceExt};

use super::atomic;
use super::error::{io, AgentError};
use super::tokens::{self, AccountFiles, TokenFile};

/// Volume name → local directory.
pub type Volumes = BTreeMap<String, PathBuf>;

/// A pod's volumes, the tokens to keep fresh, and the service-account files by volume name.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub volumes: Volumes,
    pub tokens: Vec<TokenFile>,
    pub accounts: BTreeMap<String, AccountFiles>,
    /// The Secret and ConfigMap volumes, kept current while the pod runs.
    pub mounted: Vec<Mounted>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Secret,
    ConfigMap,
}

/// What a Secret or ConfigMap volume shows.
#[derive(Debug, Clone)]
pub struct Source {
    pub kind: SourceKind,
    pub name: String,
    pub optional: Option<bool>,
    pub items: Option<Vec<KeyToPath>>,
    pub default_mode: Option<i32>,
}

impl Source {
    /// The object's `resourceVersion` and data (empty when it is optional and absent).
    pub async fn fetch(
        &self,
        client: &kube::Client,
        namespace: &str,
    ) -> Result<(Option<String>, BTreeMap<String, Vec<u8>>), AgentError> {
        match self.kind {
            SourceKind::Secret => secret_data(client, namespace, &self.name, self.optional).await,
            SourceKind::ConfigMap => {
                config_map_data(client, namespace, &self.name, self.optional).await
            }
        }
    }

    /// The files the volume holds for `data`.
    pub fn payload(&self, data: &BTreeMap<String, Vec<u8>>) -> Result<atomic::Payload, AgentError> {
        let mut out = atomic::Payload::new();
        for (key, rel, mode) in selected(data, self.items.as_deref()) {
            let Some(bytes) = data.get(key) else { continue };
            check_relative(rel)?;
            if rel.starts_with("..") {
                return Err(AgentError::Unsupported(format!("volume path {rel:?}")));
            }
            out.insert(
                rel.to_owned(),
                (bytes.clone(), file_mode(mode, self.default_mode)),
            );
        }
        Ok(out)
    }
}

/// A Secret or ConfigMap volume as last written: where, from what, and which version.
#[derive(Debug, Clone)]
pub struct Mounted {
    pub dir: PathBuf,
    pub source: Source,
    pub version: Option<String>,
    pub data: BTreeMap<String, Vec<u8>>,
}

/// Materialises every volume of `pod` under `pod_dir`.
pub async fn prepare(
    client: &kube::Client,
    pod: &Pod,
    pod_dir: &Path,
) -> Result<Prepared, AgentError> {
    let namespace = pod.namespace().unwrap_or_default();
    let namespace = namespace.as_str();
    let spec = pod.spec.clone().unwrap_or_default();
    let mut out = Prepared::default();
    for v in spec.volumes.iter().flatten() {
        let dir = pod_dir.join("volumes").join(&v.name);
        let source = if let Some(s) = &v.secret {
            Some(Source {
                kind: SourceKind::Secret,
                name: s.secret_name.clone().unwrap_or_default(),
                optional: s.optional,
                items: s.items.clone(),
                default_mode: s.default_mode,
            })
        } else {
            v.config_map.as_ref().map(|c| Source {
                kind: SourceKind::ConfigMap,
                name: c.name.clone(),
                optional: c.optional,
                items: c.items.clone(),
                default_mode: c.default_mode,
            })
        };
        if let Some(source) = source {
            // In the kubelet's atomic layout, so a later refresh never shows half a write.
            let (version, data) = source.fetch(client, namespace).await?;
            atomic::write(&dir, &source.payload(&data)?)?;
            out.mounted.push(Mounted {
                dir: dir.clone(),
                source,
                version,
                data,
            });
        } else if let Some(d) = &v.downward_api {
            let data = downward_files(pod, d.items.as_deref().unwrap_or_default())?;
            write_downward(&dir, &data, d.default_mode)?;
        } else if let Some(p) = &v.projected {
            let mut account = AccountFiles {
                token: PathBuf::new(),
                ca: None,
            };
            for source in p.sources.iter().flatten() {
                if let Some(s) = &source.secret {
                    let (_, data) = secret_data(client, namespace, &s.name, s.optional).await?;
                    write_files(&dir, &data, s.items.as_deref(), p.default_mode)?;
                } else if let Some(c) = &source.config_map {
                    let (_, data) = config_map_data(client, namespace, &c.name, c.optional).await?;
                    write_files(&dir, &data, c.items.as_deref(), p.default_mode)?;
                    let ca_path = match &c.items {
                        Some(items) => items
                            .iter()
                            .find(|i| i.key == "ca.crt")
                            .map(|i| i.path.clone()),
                        None => Some("ca.crt".to_owned()),
                    };
                    if let Some(rel) = ca_path.filter(|_| data.contains_key("ca.crt")) {
                        account.ca = Some(dir.join(rel));
                    }
                } else if let Some(d) = &source.downward_api {
                    let data = downward_files(pod, d.items.as_deref().unwrap_or_default())?;
                    write_downward(&dir, &data, p.default_mode)?;
                } else if let Some(t) = &source.service_account_token {
                    check_relative(&t.path)?;
                    let sa = spec
                        .service_account_name
                        .clone()
                        .unwrap_or_else(|| "default".into());
                    let audiences: Vec<String> = t.audience.iter().cloned().collect();
                    let (token, expires) =
                        tokens::request(client, pod, &sa, &audiences, t.expiration_seconds).await?;
                    let path = dir.join(&t.path);
                    let mode = file_mode(None, p.default_mode);
                    tokens::write_atomic(&path, token.as_bytes(), mode)?;
                    out.tokens.push(TokenFile {
                        path: path.clone(),
                        service_account: sa,
                        audiences,
                        expiration_seconds: t.expiration_seconds.unwrap_or(3600),
                        mode,
                        refresh_at: tokens::refresh_at(Timestamp::now(), expires),
                    });
                    account.token = path;
                } else {
                    return Err(AgentError::Unsupported(format!(
                        "projected volume {} source (only secret, configMap, downwardAPI and \
                         serviceAccountToken)",
                        v.name
                    )));
                }
            }
            if !account.token.as_os_str().is_empty() {
                out.accounts.insert(v.name.clone(), account);
            }
        } else if v.empty_dir.is_some() {
            // created below
        } else if let Some(pvc) = &v.persistent_volume_claim {
            let path = claim_path(client, namespace, &pvc.claim_name).await?;
            std::fs::create_dir_all(&path).map_err(io(&path))?;
            out.volumes.insert(v.name.clone(), path);
            continue;
        } else {
            return Err(AgentError::Unsupported(format!(
                "volume {} (only secret, configMap, downwardAPI, projected, emptyDir and \
                 persistentVolumeClaim)",
                v.name
            )));
        }
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        out.volumes.insert(v.name.clone(), dir);
    }
    Ok(out)
}

/// The local directory of the PersistentVolume bound to claim `namespace/name`.
async fn claim_path(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<PathBuf, AgentError> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let claim = claims
        .get_opt(name)
        .await?
        .ok_or_else(|| missing("PersistentVolumeClaim", namespace, name))?;
    let unbound = || AgentError::Unbound {
        namespace: namespace.into(),
        name: name.into(),
    };
    let volume = claim
        .spec
        .and_then(|s| s.volume_name)
        .filter(|v| !v.is_empty())
        .ok_or_else(unbound)?;
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pv = pvs
        .get_opt(&volume)
        .await?
        .ok_or_else(|| missing("PersistentVolume", "", &volume))?;
    pv_path(&pv).ok_or_else(|| {
        AgentError::Unsupported(format!(
            "PersistentVolume {volume} (only local and hostPath volumes)"
        ))
    })
}

/// `spec.local.path` or `spec.hostPath.path` of a PersistentVolume.
pub fn pv_path(pv: &PersistentVolume) -> Option<PathBuf> {
    let spec = pv.spec.as_ref()?;
    spec.local
        .as_ref()
        .map(|l| PathBuf::from(&l.path))
        .or_else(|| spec.host_path.as_ref().map(|h| PathBuf::from(&h.path)))
}

async fn secret_data(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    optional: Option<bool>,
) -> Result<(Option<String>, BTreeMap<String, Vec<u8>>), AgentError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await? {
        Some(secret) => Ok((
            secret.metadata.resource_version,
            secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect(),
        )),
        None if optional == Some(true) => Ok((None, BTreeMap::new())),
        None => Err(missing("Secret", namespace, name)),
    }
}

async fn config_map_data(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    optional: Option<bool>,
) -> Result<(Option<String>, BTreeMap<String, Vec<u8>>), AgentError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await? {
        Some(cm) => {
            let version = cm.metadata.resource_version;
            let mut data: BTreeMap<String, Vec<u8>> = cm
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect();
            data.extend(
                cm.binary_data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0)),
            );
            Ok((version, data))
        }
        None if optional == Some(true) => Ok((None, BTreeMap::new())),
        None => Err(missing("ConfigMap", namespace, name)),
    }
}

/// Downward API files: (path, contents, mode).
fn downward_files(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
) -> Result<Vec<(String, String, Option<i32>)>, AgentError> {
    items
        .iter()
        .map(|item| {
            let value = match (&item.field_ref, &item.resource_field_ref) {
                (Some(f), _) => super::downward::field(pod, &f.field_path)?,
                (None, Some(r)) => {
                    return Err(AgentError::Unsupported(format!(
                        "downward API resourceFieldRef {}",
                        r.resource
                    )))
                }
                (None, None) => String::new(),
            };
            Ok((item.path.clone(), value, item.mode))
        })
        .collect()
}

fn write_downward(
    dir: &Path,
    files: &[(String, String, Option<i32>)],
    default_mode: Option<i32>,
) -> Result<(), AgentError> {
    for (path, value, mode) in files {
        let data = BTreeMap::from([(path.clone(), value.clone().into_bytes())]);
        let items = [KeyToPath {
            key: path.clone(),
            path: path.clone(),
            mode: *mode,
            ..KeyToPath::default()
        }];
        write_files(dir, &data, Some(&items), default_mode)?;
    }
    Ok(())
}

fn missing(kind: &'static str, namespace: &str, name: &str) -> AgentError {
    AgentError::Missing {
        kind,
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// A key names a file inside the volume, never a way out of it.
fn check_relative(rel: &str) -> Result<(), AgentError> {
    if rel.is_empty()
        || Path::new(rel)
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(AgentError::Unsupported(format!("volume path {rel:?}")));
    }
    Ok(())
}

/// The file mode: the item's, else the volume's default, else 0644; the owner keeps read access
/// whatever the mode, as the process runs as this user.
fn file_mode(mode: Option<i32>, default_mode: Option<i32>) -> u32 {
    let mode = mode.or(default_mode).unwrap_or(0o644);
    u32::try_from(mode).unwrap_or(0o644) | 0o400
}

/// (key, relative path, mode) of each file: the items when listed, else every key.
fn selected<'a>(
    data: &'a BTreeMap<String, Vec<u8>>,
    items: Option<&'a [KeyToPath]>,
) -> Vec<(&'a str, &'a str, Option<i32>)> {
    match items {
        Some(items) => items
            .iter()
            .map(|i| (i.key.as_str(), i.path.as_str(), i.mode))
            .collect(),
        None => data
            .keys()
            .map(|k| (k.as_str(), k.as_str(), None))
            .collect(),
    }
}

/// Plain files (projected and downward API volumes, written once at the pod's start).
fn write_files(
    dir: &Path,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
) -> Result<(), AgentError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for (key, rel, mode) in selected(data, items) {
        let Some(bytes) = data.get(key) else { continue };
        check_relative(rel)?;
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        // A read-only file from an earlier start cannot be opened for writing by a non-root user.
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, bytes).map_err(io(&path))?;
        let mode = file_mode(mode, default_mode);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(io(&path))?;
    }
    Ok(())
}

/// In-container paths and ports and their local stand-ins, for one container.
#[derive(Debug, Clone, Default)]
pub struct Rewrites {
    /// mountPath → local path, longest mountPath first.
    pub paths: Vec<(String, PathBuf)>,
    /// container port → loopback port.
    pub ports: Vec<(i32, u16)>,
}

impl Rewrites {
    /// `sub_paths` is this container's directory for `subPath` mounts of refreshed volumes.
    pub fn new(
        container: &Container,
        volumes: &Volumes,
        ports: Vec<(i32, u16)>,
        sub_paths: &Path,
    ) -> Result<Self, AgentError> {
        let mut paths = Vec::new();
        for (i, m) in container.volume_mounts.iter().flatten().enumerate() {
            let dir = volumes.get(&m.name).ok_or_else(|| {
                AgentError::Unsupported(format!("mount of unknown volume {}", m.name))
            })?;
            let local = match m.sub_path.as_deref() {
                Some(sub) if !sub.is_empty() => {
                    check_relative(sub)?;
                    if atomic::is_atomic(dir) {
                        // The kubelet never refreshes a subPath mount: a copy as of this start.
                        let pinned = sub_paths.join(&m.name).join(i.to_string());
                        atomic::pin(&dir.join(sub), &pinned)?;
                        pinned
                    } else {
                        dir.join(sub)
                    }
                }
                _ => dir.clone(),
            };
            paths.push((m.mount_path.trim_end_matches('/').to_owned(), local));
        }
        paths.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        Ok(Self { paths, ports })
    }

    /// Rewrites one argument or env value: a mounted path (or a path below it) becomes the local
    /// path; a listen address on a container port becomes `127.0.0.1:<loopback port>`. Both also
    /// apply after `--flag=`.
    pub fn apply(&self, value: &str) -> String {
        if let Some((flag, rest)) = value.split_once('=') {
            if flag.starts_with('-') {
                return format!("{flag}={}", self.apply_plain(rest));
            }
        }
        self.apply_plain(value)
    }

    fn apply_plain(&self, value: &str) -> String {
        for (mount, local) in &self.paths {
            if value == mount {
                return local.display().to_string();
            }
            if let Some(rest) = value.strip_prefix(mount.as_str()) {
                if let Some(rest) = rest.strip_prefix('/') {
                    return local.join(rest).display().to_string();
                }
            }
        }
        if let Some((host, port)) = value.rsplit_once(':') {
            let local_host = matches!(
                host,
                "" | "0.0.0.0" | "[::]" | "::" | "127.0.0.1" | "localhost"
            );
            if let (true, Ok(port)) = (local_host, port.parse::<i32>()) {
                if let Some((_, local)) = self.ports.iter().find(|(c, _)| *c == port) {
                    return format!("127.0.0.1:{local}");
                }
            }
        }
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrites() -> Rewrites {
        Rewrites {
            paths: vec![
                ("/etc/atserver/tls".into(), PathBuf::from("/s/pod/tls")),
                ("/data".into(), PathBuf::from("/s/claims/data")),
            ],
            ports: vec![(6464, 40001), (8080, 40002)],
        }
    }

    #[test]
    fn paths_and_ports() {
        let r = rewrites();
        assert_eq!(r.apply("/data"), "/s/claims/data");
        assert_eq!(r.apply("/etc/atserver/tls/tls.crt"), "/s/pod/tls/tls.crt");
        assert_eq!(
            r.apply("--tls-key=/etc/atserver/tls/k"),
            "--tls-key=/s/pod/tls/k"
        );
        assert_eq!(r.apply("/database"), "/database");
        assert_eq!(r.apply("0.0.0.0:6464"), "127.0.0.1:40001");
        assert_eq!(r.apply(":8080"), "127.0.0.1:40002");
        assert_eq!(r.apply("example.com:6464"), "example.com:6464");
        assert_eq!(r.apply("0.0.0.0:9999"), "0.0.0.0:9999");
        assert_eq!(r.apply("@alice"), "@alice");
    }

    #[test]
    fn files_stay_inside_the_volume() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = BTreeMap::from([("k".to_owned(), b"v".to_vec())]);
        let items = [KeyToPath {
            key: "k".into(),
            path: "../escape".into(),
            ..KeyToPath::default()
        }];
        assert!(write_files(dir.path(), &data, Some(&items), None).is_err());
        write_files(dir.path(), &data, None, Some(0o440)).expect("writes");
        assert_eq!(std::fs::read(dir.path().join("k")).expect("file"), b"v");
    }
}
