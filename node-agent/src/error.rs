use std::path::PathBuf;

/// Why the node agent, a pod or a volume could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
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
    #[error("claim {namespace}/{name} is not bound to a volume yet")]
    Unbound { namespace: String, name: String },
    #[error("TLS for the kubelet API: {0}")]
    Tls(String),
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

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> AgentError {
    let path = path.into();
    move |source| AgentError::Io { path, source }
}
