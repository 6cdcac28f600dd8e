//! Where the CRAM secret comes from: a file, standard input, or the Kubernetes Secret the operator
//! wrote (read through the user's kubeconfig).

use std::io::Read;

use crate::cli::SecretSource;
use crate::error::{Class, CtlError, Result};

/// The data key under which the operator stores the CRAM secret (operator `build::CRAM_KEY`).
pub const SECRET_KEY: &str = "cramSecret";

pub async fn read(source: &SecretSource) -> Result<String> {
    let raw = if let Some(path) = &source.cram_secret_file {
        std::fs::read_to_string(path)
            .map_err(|e| CtlError::usage(format!("--cram-secret-file {}: {e}", path.display())))?
    } else if source.cram_secret_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CtlError::usage(format!("reading the CRAM secret from stdin: {e}")))?;
        s
    } else if let Some(name) = &source.from_secret {
        from_kubernetes(name).await?
    } else {
        return Err(CtlError::usage(
            "give the CRAM secret with --cram-secret-file, --cram-secret-stdin or --from-secret",
        ));
    };
    let secret = raw.trim().to_owned();
    if secret.is_empty() || secret.contains(char::is_whitespace) {
        return Err(CtlError::usage(
            "the CRAM secret is empty or contains whitespace",
        ));
    }
    Ok(secret)
}

/// Reads `namespace/name`'s `cramSecret` with the current kubeconfig context.
async fn from_kubernetes(reference: &str) -> Result<String> {
    use k8s_openapi::api::core::v1::Secret;
    let (namespace, name) = reference
        .split_once('/')
        .filter(|(ns, n)| !ns.is_empty() && !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| {
            CtlError::usage(format!(
                "--from-secret must be namespace/name, got {reference:?}"
            ))
        })?;
    let client = kube::Client::try_default().await.map_err(|e| {
        CtlError::new(
            Class::Connection,
            format!("connecting to Kubernetes with your kubeconfig: {e}"),
        )
    })?;
    let api: kube::Api<Secret> = kube::Api::namespaced(client, namespace);
    let secret = api.get_opt(name).await.map_err(|e| {
        CtlError::new(
            Class::Connection,
            format!("reading Secret {reference}: {e}; check your kubeconfig context and that you may read Secrets in {namespace}"),
        )
    })?;
    let secret = secret.ok_or_else(|| {
        CtlError::not_found(format!(
            "Secret {reference} not found; the operator names it after the Atsign (kubectl get secrets -n {namespace})"
        ))
    })?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(SECRET_KEY))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(SECRET_KEY))
                .map(|s| s.clone().into_bytes())
        })
        .ok_or_else(|| {
            CtlError::not_found(format!("Secret {reference} has no `{SECRET_KEY}` entry"))
        })?;
    String::from_utf8(bytes)
        .map_err(|_| CtlError::usage(format!("Secret {reference}: `{SECRET_KEY}` is not UTF-8")))
}
