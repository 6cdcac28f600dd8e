//! TLS trust, client certificate and timeouts for every client connection.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::ResolvesClientCert;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::ClientError;

/// Which servers to trust and which certificate (if any) to present.
///
/// atServers present their own certificate as a client certificate when they dial a peer (§6.5);
/// people's clients present none.
#[derive(Debug)]
pub struct TlsOptions {
    roots: RootCertStore,
    client_cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    /// Chooses the certificate per handshake instead: a server that renews its certificate
    /// without restarting presents the new one to peers at once.
    client_cert_resolver: Option<Arc<dyn ResolvesClientCert>>,
}

impl Clone for TlsOptions {
    fn clone(&self) -> Self {
        Self {
            roots: self.roots.clone(),
            client_cert: self
                .client_cert
                .as_ref()
                .map(|(chain, key)| (chain.clone(), key.clone_key())),
            client_cert_resolver: self.client_cert_resolver.clone(),
        }
    }
}

impl TlsOptions {
    /// Trusts exactly the given roots.
    pub fn with_roots(roots: RootCertStore) -> Self {
        Self {
            roots,
            client_cert: None,
            client_cert_resolver: None,
        }
    }

    /// Trusts every certificate in a PEM bundle held in memory.
    pub fn from_ca_pem(pem: &[u8]) -> Result<Self, ClientError> {
        let mut roots = RootCertStore::empty();
        let mut count = 0usize;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| ClientError::TlsConfig(format!("CA bundle: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| ClientError::TlsConfig(format!("CA certificate: {e}")))?;
            count += 1;
        }
        if count == 0 {
            return Err(ClientError::TlsConfig(
                "CA bundle holds no certificate".into(),
            ));
        }
        Ok(Self::with_roots(roots))
    }

    /// Trusts every certificate in a PEM bundle file.
    pub fn from_ca_pem_file(path: &Path) -> Result<Self, ClientError> {
        Self::from_ca_pem(&read(path)?)
    }

    /// Presents `chain` (leaf first) with `key` when the server asks for a client certificate.
    pub fn with_client_cert(
        mut self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Self {
        self.client_cert = Some((chain, key));
        self
    }

    /// Like [`Self::with_client_cert`], from PEM text (certificate chain, then private key).
    pub fn with_client_cert_pem(
        self,
        chain_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Self, ClientError> {
        let chain = CertificateDer::pem_slice_iter(chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClientError::TlsConfig(format!("client certificate: {e}")))?;
        if chain.is_empty() {
            return Err(ClientError::TlsConfig(
                "client certificate PEM holds no certificate".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| ClientError::TlsConfig(format!("client key: {e}")))?;
        Ok(self.with_client_cert(chain, key))
    }

    /// Like [`Self::with_client_cert_pem`], from files.
    pub fn with_client_cert_pem_files(self, chain: &Path, key: &Path) -> Result<Self, ClientError> {
        let chain = read(chain)?;
        let key = read(key)?;
        self.with_client_cert_pem(&chain, &key)
    }

    /// Presents whatever certificate `resolver` holds at each handshake (it takes precedence over
    /// [`Self::with_client_cert`]).
    pub fn with_client_cert_resolver(mut self, resolver: Arc<dyn ResolvesClientCert>) -> Self {
        self.client_cert_resolver = Some(resolver);
        self
    }

    fn build(self) -> Result<rustls::ClientConfig, ClientError> {
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::TlsConfig(e.to_string()))?
        .with_root_certificates(self.roots);
        if let Some(resolver) = self.client_cert_resolver {
            return Ok(builder.with_client_cert_resolver(resolver));
        }
        match self.client_cert {
            None => Ok(builder.with_no_client_auth()),
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ClientError::TlsConfig(format!("client certificate: {e}"))),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::File {
        path: path.display().to_string(),
        source,
    })
}

/// Everything a connection needs besides the address. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub(crate) tls: Arc<rustls::ClientConfig>,
    /// Limit for the TCP connect and, separately, for the TLS handshake.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes while a reply is due.
    pub read_timeout: Duration,
    /// Longest wait for one whole reply, however the bytes trickle in.
    pub response_timeout: Duration,
    /// Largest reply accepted (the server's own inbound limit is 10,240,000 bytes, §1.3).
    pub max_response_bytes: usize,
}

impl ClientConfig {
    /// Defaults follow the Dart client: 10 s without bytes, 90 s per response (§1.5).
    pub fn new(tls: TlsOptions) -> Result<Self, ClientError> {
        Ok(Self {
            tls: Arc::new(tls.build()?),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(90),
            max_response_bytes: 16 * 1024 * 1024,
        })
    }

    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    pub fn with_response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    pub fn with_max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }
}
