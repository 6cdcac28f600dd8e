use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{kind} {namespace}/{name} not found")]
    Missing {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    #[error("key {key} not found in {kind} {namespace}/{name}")]
    MissingKey {
        kind: &'static str,
        namespace: String,
        name: String,
        key: String,
    },
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("no program for image {0:?}")]
    NoProgram(String),
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
}

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> KubeletError {
    let path = path.into();
    move |source| KubeletError::Io { path, source }
}
