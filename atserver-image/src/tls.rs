//! TLS: a server config whose certificate is swapped when the files change (live connections keep
//! their session), and an optional client-certificate request for peers.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::client::ResolvesClientCert;
use rustls::crypto::ring::default_provider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no certificate in {0}")]
    NoCert(PathBuf),
    #[error("no usable private key in {0}")]
    NoKey(PathBuf),
    #[error("invalid CA bundle {0}")]
    Ca(PathBuf),
    #[error("the key in {key} does not belong to the certificate in {cert}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads a certificate chain and key into a signing `CertifiedKey`.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::NoCert(cert.to_path_buf()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCert(cert.to_path_buf()));
    }
    let key_der =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey(key.to_path_buf()))?;
    let signing = default_provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|_| TlsError::NoKey(key.to_path_buf()))?;
    let certified = CertifiedKey::new(chain, signing);
    // The two files are read one after the other: a renewal swapped in between pairs the old
    // certificate with the new key, which would fail every handshake until the next reload.
    // (`Unknown`: the key type cannot tell; the pair is taken as it is.)
    match certified.keys_match() {
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
            })
        }
        _ => Ok(certified),
    }
}

/// Serves the current certificate; [`CertReloader::reload_if_changed`] swaps it.
#[derive(Debug)]
pub struct CertReloader {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    stamp: RwLock<(Option<SystemTime>, Option<SystemTime>)>,
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl CertReloader {
    pub fn new(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let ck = load_certified_key(cert, key)?;
        Ok(Arc::new(CertReloader {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(ck)),
            stamp: RwLock::new((mtime(cert), mtime(key))),
        }))
    }

    /// Reloads when either file's modification time changed; a broken pair keeps the old one.
    /// Returns true when a new certificate was installed.
    pub fn reload_if_changed(&self) -> bool {
        let now = (mtime(&self.cert), mtime(&self.key));
        let changed = self.stamp.read().map(|s| *s != now).unwrap_or(false);
        if !changed {
            return false;
        }
        match load_certified_key(&self.cert, &self.key) {
            Ok(ck) => {
                if let Ok(mut c) = self.current.write() {
                    *c = Arc::new(ck);
                }
                if let Ok(mut s) = self.stamp.write() {
                    *s = now;
                }
                tracing::info!("TLS certificate reloaded");
                true
            }
            Err(e) => {
                // Files may be mid-rotation; try again on the next tick.
                tracing::warn!(error = %e, "TLS certificate reload failed; keeping the current one");
                false
            }
        }
    }
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

/// The same certificate is the one this server presents when it dials a peer or the atDirectory,
/// so a renewal reaches outgoing connections without a restart too.
impl ResolvesClientCert for CertReloader {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Builds the listener's rustls config.
pub fn server_config(
    resolver: Arc<CertReloader>,
    ca_bundle: Option<&Path>,
) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match ca_bundle {
        Some(path) => {
            let pem = read(path)?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|_| TlsError::Ca(path.to_path_buf()))?;
                roots
                    .add(cert)
                    .map_err(|_| TlsError::Ca(path.to_path_buf()))?;
            }
            // Request a certificate (peers present one) but let human clients in without.
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|_| TlsError::Ca(path.to_path_buf()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    Ok(builder.with_cert_resolver(resolver))
}

#[cfg(test)]
mod reload_tests {
    use super::*;

    fn leaf(dir: &Path, name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let (c, k) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&c, cert.pem()).expect("write cert");
        std::fs::write(&k, key.serialize_pem()).expect("write key");
        (c, k, cert.der().to_vec())
    }

    fn client_side(r: &CertReloader) -> Vec<u8> {
        ResolvesClientCert::resolve(r, &[], &[])
            .expect("a client certificate")
            .cert[0]
            .to_vec()
    }

    #[test]
    fn a_renewed_certificate_is_presented_to_peers_without_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key, first) = leaf(dir.path(), "alice.example");
        let reloader = CertReloader::new(&cert, &key).expect("reloader");
        assert_eq!(client_side(&reloader), first);

        // The files are replaced (a renewal); the modification time must move for the reloader to
        // notice, which a coarse filesystem clock may not show within the same second.
        let (_, _, second) = leaf(dir.path(), "alice.example");
        let later = SystemTime::now() + std::time::Duration::from_secs(2);
        for f in [&cert, &key] {
            std::fs::File::options()
                .write(true)
                .open(f)
                .and_then(|file| file.set_modified(later))
                .expect("set mtime");
        }
        assert!(
            reloader.reload_if_changed(),
            "the renewal was not picked up"
        );
        assert_eq!(
            client_side(&reloader),
            second,
            "peers would still get the old certificate"
        );
        assert_ne!(first, second);
    }

    #[test]
    fn a_certificate_and_a_key_from_two_renewals_are_not_installed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key, first) = leaf(dir.path(), "alice.example");
        let reloader = CertReloader::new(&cert, &key).expect("reloader");
        // Caught mid-swap: the next certificate beside the previous key.
        let other = tempfile::tempdir().expect("tempdir");
        let (next_cert, _, _) = leaf(other.path(), "alice.example");
        std::fs::copy(&next_cert, &cert).expect("copy");
        let later = SystemTime::now() + std::time::Duration::from_secs(2);
        std::fs::File::options()
            .write(true)
            .open(&cert)
            .and_then(|file| file.set_modified(later))
            .expect("set mtime");
        assert!(matches!(
            load_certified_key(&cert, &key),
            Err(TlsError::KeyMismatch { .. })
        ));
        assert!(
            !reloader.reload_if_changed(),
            "a mismatched pair was installed"
        );
        assert_eq!(client_side(&reloader), first, "the working pair is kept");
    }
}
