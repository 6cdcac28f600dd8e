//! A scripted atProtocol TLS server for the client tests: a throwaway CA made with rcgen, a server
//! certificate for `localhost` and `127.0.0.1`, an optional client certificate, and a listener on
//! `127.0.0.1:0` that runs a per-connection script.
#![allow(dead_code)] // each test file uses a different subset

use std::future::Future;
use std::sync::Arc;

use at_protocol::client::{ClientConfig, TlsOptions};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

pub struct Pki {
    pub ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

impl Pki {
    pub fn new() -> Self {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name
            .push(DnType::CommonName, "atfleet test CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();

        let mut server =
            CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        server.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let server_key = KeyPair::generate().unwrap();
        let server_cert = server.signed_by(&server_key, &ca).unwrap();

        let mut client = CertificateParams::new(vec!["bob.example".into()]).unwrap();
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate().unwrap();
        let client_cert = client.signed_by(&client_key, &ca).unwrap();

        Self {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            server_chain: vec![server_cert.der().clone()],
            server_key: server_key.serialize_der(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }

    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::new(TlsOptions::from_ca_pem(self.ca_pem.as_bytes()).unwrap()).unwrap()
    }

    pub fn client_config_with_cert(&self) -> ClientConfig {
        let tls = TlsOptions::from_ca_pem(self.ca_pem.as_bytes())
            .unwrap()
            .with_client_cert_pem(
                self.client_cert_pem.as_bytes(),
                self.client_key_pem.as_bytes(),
            )
            .unwrap();
        ClientConfig::new(tls).unwrap()
    }

    fn server_config(&self) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        // Like an atServer: ask for a client certificate, do not require one.
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.server_chain.clone(), key)
            .unwrap();
        Arc::new(config)
    }
}

/// One accepted connection, seen from the server's side.
pub struct ServerConn {
    stream: BufReader<TlsStream<TcpStream>>,
}

impl ServerConn {
    /// Writes `text` as one TLS record.
    pub async fn send(&mut self, text: &str) {
        let s = self.stream.get_mut();
        s.write_all(text.as_bytes()).await.unwrap();
        s.flush().await.unwrap();
    }

    /// The next command line without its newline; `None` at end of stream.
    pub async fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.stream.read_line(&mut line).await {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
        }
    }

    pub fn client_presented_cert(&self) -> bool {
        self.stream
            .get_ref()
            .get_ref()
            .1
            .peer_certificates()
            .is_some()
    }

    pub async fn close(mut self) {
        let _ = self.stream.get_mut().shutdown().await;
    }
}

/// Listens on `127.0.0.1:0` and runs `script` on every accepted TLS connection.
pub async fn serve<F, Fut>(pki: &Pki, script: F) -> u16
where
    F: Fn(ServerConn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = TlsAcceptor::from(pki.server_config());
    let script = Arc::new(script);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let script = script.clone();
            tokio::spawn(async move {
                // Clients that fail the handshake (wrong CA) just end here.
                if let Ok(tls) = acceptor.accept(tcp).await {
                    script(ServerConn {
                        stream: BufReader::new(tls),
                    })
                    .await;
                }
            });
        }
    });
    port
}
