//! The root listener's certificate: loaded from PEM files and swapped when the files change, so new
//! connections get the new certificate while existing ones keep going.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::ring as provider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::metrics::{Metrics, ResultLabel};

/// The file contents a key was built from, to notice any change (mtimes can repeat within a tick,
/// and Kubernetes swaps Secret files through symlinks).
#[derive(PartialEq, Eq)]
struct Source {
    cert: Vec<u8>,
    key: Vec<u8>,
}

pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<(Arc<CertifiedKey>, Source)>,
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .finish()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::io(path.display().to_string(), e))
}

fn certified_key(
    source: &Source,
    cert_path: &Path,
    key_path: &Path,
) -> Result<CertifiedKey, Error> {
    let chain = CertificateDer::pem_slice_iter(&source.cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("{}: {e}", cert_path.display())))?;
    if chain.is_empty() {
        return Err(Error::Tls(format!(
            "{}: no certificate found",
            cert_path.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(&source.key)
        .map_err(|e| Error::Tls(format!("{}: {e}", key_path.display())))?;
    let signing_key = provider::sign::any_supported_type(&key)
        .map_err(|e| Error::Tls(format!("{}: {e}", key_path.display())))?;
    let certified = CertifiedKey::new(chain, signing_key);
    // A cert and key rewritten one after the other can briefly disagree; never serve that pair.
    certified.keys_match().map_err(|e| {
        Error::Tls(format!(
            "{} does not match {}: {e}",
            key_path.display(),
            cert_path.display()
        ))
    })?;
    Ok(certified)
}

impl ReloadingCert {
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<Self>, Error> {
        let source = Source {
            cert: read(cert_path)?,
            key: read(key_path)?,
        };
        let key = certified_key(&source, cert_path, key_path)?;
        Ok(Arc::new(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            current: RwLock::new((Arc::new(key), source)),
        }))
    }

    /// Reloads when the files differ from what is served. `Ok(true)` when a new certificate was installed.
    pub fn reload_if_changed(&self) -> Result<bool, Error> {
        let source = Source {
            cert: read(&self.cert_path)?,
            key: read(&self.key_path)?,
        };
        {
            let current = self.current.read().unwrap_or_else(|p| p.into_inner());
            if current.1 == source {
                return Ok(false);
            }
        }
        let key = certified_key(&source, &self.cert_path, &self.key_path)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = (Arc::new(key), source);
        Ok(true)
    }

    /// Polls the files every `interval` until cancelled.
    pub async fn watch(
        self: Arc<Self>,
        interval: Duration,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            match self.reload_if_changed() {
                Ok(false) => {}
                Ok(true) => {
                    tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded");
                    metrics
                        .tls_reloads
                        .get_or_create(&ResultLabel { result: "ok" })
                        .inc();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "TLS certificate not reloaded; keeping the current one");
                    metrics
                        .tls_reloads
                        .get_or_create(&ResultLabel { result: "error" })
                        .inc();
                }
            }
        }
    }

    pub fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor, Error> {
        let config = ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .0
                .clone(),
        )
    }
}
