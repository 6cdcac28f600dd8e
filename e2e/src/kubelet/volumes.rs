//! A pod's volumes as local directories: Secrets and ConfigMaps written as files, emptyDirs under the
//! pod's directory, claims as directories that outlive the pod; and the rewriting of in-container
//! paths and ports in args and env to their local stand-ins.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Container, KeyToPath, PodSpec, Secret};
use kube::Api;

use super::error::{io, KubeletError};

/// Volume name → local directory.
pub type Volumes = BTreeMap<String, PathBuf>;

/// Materialises every volume of `spec` for a pod in `namespace`.
pub async fn prepare(
    client: &kube::Client,
    namespace: &str,
    spec: &PodSpec,
    pod_dir: &Path,
    claims_dir: &Path,
) -> Result<Volumes, KubeletError> {
    let mut out = Volumes::new();
    for v in spec.volumes.iter().flatten() {
        let dir = if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            let data = match api.get_opt(&name).await? {
                Some(secret) => secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect(),
                None if s.optional == Some(true) => BTreeMap::new(),
                None => return Err(missing("Secret", namespace, &name)),
            };
            let dir = pod_dir.join("volumes").join(&v.name);
            write_files(&dir, &data, s.items.as_deref(), s.default_mode)?;
            dir
        } else if let Some(c) = &v.config_map {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
            let data = match api.get_opt(&c.name).await? {
                Some(cm) => {
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
                    data
                }
                None if c.optional == Some(true) => BTreeMap::new(),
                None => return Err(missing("ConfigMap", namespace, &c.name)),
            };
            let dir = pod_dir.join("volumes").join(&v.name);
            write_files(&dir, &data, c.items.as_deref(), c.default_mode)?;
            dir
        } else if v.empty_dir.is_some() {
            pod_dir.join("volumes").join(&v.name)
        } else if let Some(pvc) = &v.persistent_volume_claim {
            claims_dir.join(namespace).join(&pvc.claim_name)
        } else {
            return Err(KubeletError::Unsupported(format!(
                "volume {} (only secret, configMap, emptyDir and persistentVolumeClaim)",
                v.name
            )));
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        out.insert(v.name.clone(), dir);
    }
    Ok(out)
}

fn missing(kind: &'static str, namespace: &str, name: &str) -> KubeletError {
    KubeletError::Missing {
        kind,
        namespace: namespace.into(),
        name: name.into(),
    }
}

fn write_files(
    dir: &Path,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
) -> Result<(), KubeletError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let files: Vec<(&str, &str, Option<i32>)> = match items {
        Some(items) => items
            .iter()
            .map(|i| (i.key.as_str(), i.path.as_str(), i.mode))
            .collect(),
        None => data
            .keys()
            .map(|k| (k.as_str(), k.as_str(), None))
            .collect(),
    };
    for (key, rel, mode) in files {
        let Some(bytes) = data.get(key) else { continue };
        // A key names a file inside the volume, never a way out of it.
        if Path::new(rel)
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(KubeletError::Unsupported(format!("volume path {rel:?}")));
        }
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        // A read-only file from an earlier start cannot be opened for writing by a non-root user.
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, bytes).map_err(io(&path))?;
        let mode = mode.or(default_mode).unwrap_or(0o644);
        // The owner keeps read access whatever the mode, as the process runs as this user.
        let mode = u32::try_from(mode).unwrap_or(0o644) | 0o400;
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
    pub fn new(
        container: &Container,
        volumes: &Volumes,
        ports: Vec<(i32, u16)>,
    ) -> Result<Self, KubeletError> {
        let mut paths = Vec::new();
        for m in container.volume_mounts.iter().flatten() {
            let dir = volumes.get(&m.name).ok_or_else(|| {
                KubeletError::Unsupported(format!("mount of unknown volume {}", m.name))
            })?;
            let local = match m.sub_path.as_deref() {
                Some(sub) if !sub.is_empty() => dir.join(sub),
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
