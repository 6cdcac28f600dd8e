//! A throwaway CA and one leaf certificate for `localhost`/`127.0.0.1`, shared by every server in a run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use at_protocol::client::{ClientConfig, TlsOptions};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::error::BenchError;

pub struct Pki {
    pub ca_pem: String,
    /// The CA certificate as a file (atservers' `--ca-bundle`).
    pub ca_path: PathBuf,
    /// The shared leaf, for `localhost` and `127.0.0.1`.
    pub cert: PathBuf,
    pub key: PathBuf,
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    pub fn create(dir: &Path) -> Result<Pki, BenchError> {
        let err = |e: rcgen::Error| BenchError::Setup(format!("certificates: {e}"));
        let mut ca = CertificateParams::default();
        ca.distinguished_name
            .push(DnType::CommonName, "atfleet-bench CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().map_err(err)?;
        let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
        let issuer = Issuer::new(ca, ca_key);
        let ca_pem = ca_cert.pem();
        let ca_path = dir.join("bench-ca.pem");
        std::fs::write(&ca_path, &ca_pem).map_err(BenchError::io(&ca_path))?;
        let mut pki = Pki {
            ca_pem,
            ca_path,
            cert: PathBuf::new(),
            key: PathBuf::new(),
            dir: dir.to_path_buf(),
            issuer,
        };
        (pki.cert, pki.key) = pki.leaf("bench", &["localhost", "127.0.0.1"])?;
        Ok(pki)
    }

    /// Writes a leaf certificate for exactly `names` (server and client use); returns (cert, key).
    pub fn leaf(&self, file: &str, names: &[&str]) -> Result<(PathBuf, PathBuf), BenchError> {
        let err = |e: rcgen::Error| BenchError::Setup(format!("certificates: {e}"));
        let mut leaf =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .map_err(err)?;
        leaf.distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or(file));
        leaf.use_authority_key_identifier_extension = true;
        let leaf_key = KeyPair::generate().map_err(err)?;
        let leaf_cert = leaf.signed_by(&leaf_key, &self.issuer).map_err(err)?;
        let (cert, key) = (
            self.dir.join(format!("{file}.crt")),
            self.dir.join(format!("{file}.key")),
        );
        std::fs::write(&key, leaf_key.serialize_pem()).map_err(BenchError::io(&key))?;
        std::fs::write(&cert, leaf_cert.pem()).map_err(BenchError::io(&cert))?;
        Ok((cert, key))
    }

    /// The atProtocol client's configuration trusting this CA.
    pub fn at_client(&self) -> Result<ClientConfig, BenchError> {
        Ok(ClientConfig::new(TlsOptions::from_ca_pem(
            self.ca_pem.as_bytes(),
        )?)?)
    }

    /// A plain rustls client trusting this CA (for the echo baselines).
    pub fn rustls_client(&self) -> Result<Arc<rustls::ClientConfig>, BenchError> {
        let mut roots = rustls::RootCertStore::empty();
        let ca = CertificateDer::from_pem_slice(self.ca_pem.as_bytes())
            .map_err(|e| BenchError::Setup(format!("CA certificate: {e}")))?;
        roots
            .add(ca)
            .map_err(|e| BenchError::Setup(format!("CA certificate: {e}")))?;
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| BenchError::Setup(format!("TLS client: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// A rustls server configuration from PEM files (the echo server's).
pub fn rustls_server(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, BenchError> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| BenchError::Setup(format!("{}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| BenchError::Setup(format!("{}: {e}", key.display())))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| BenchError::Setup(format!("TLS server: {e}")))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| BenchError::Setup(format!("TLS server: {e}")))?;
    Ok(Arc::new(config))
}
