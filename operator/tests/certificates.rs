//! The built-in CA's certificates through their real use: a TLS handshake in which the atServer
//! presents its leaf as server certificate and, to a peer, as client certificate.

use std::sync::Arc;

use atfleet_operator::tls::{inspect, reissue_reason, BuiltInCa, ReissueReason, RenewalPoint};
use jiff::{SignedDuration, Timestamp};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca_pem: &str) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA added");
    }
    roots
}

fn chain(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.expect("cert"))
        .collect()
}

/// Mutual TLS between two holders of built-in-CA leaves: both sides verify the other.
#[tokio::test]
async fn leaves_work_for_server_and_client_auth() {
    let now = Timestamp::now();
    let ca = BuiltInCa::generate(now).expect("CA");
    let server = ca
        .issue(
            "alice.fleet.svc.cluster.local",
            now,
            SignedDuration::from_hours(24),
        )
        .expect("leaf");
    let client = ca
        .issue(
            "bob.fleet.svc.cluster.local",
            now,
            SignedDuration::from_hours(24),
        )
        .expect("leaf");

    let client_verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots(&server.ca_pem)),
        provider(),
    )
    .build()
    .expect("client verifier");
    let server_config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(
            chain(&server.cert_pem),
            PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).expect("key"),
        )
        .expect("server config");
    let client_config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots(&client.ca_pem))
        .with_client_auth_cert(
            chain(&client.cert_pem),
            PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes()).expect("key"),
        )
        .expect("client config");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut tls = acceptor.accept(tcp).await.expect("server handshake");
        let peer = tls.get_ref().1.peer_certificates().map(|c| c.len());
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.expect("read");
        tls.write_all(&buf).await.expect("write");
        tls.shutdown().await.expect("shutdown");
        peer
    });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("alice.fleet.svc.cluster.local").expect("name");
    let mut tls = connector
        .connect(name, tcp)
        .await
        .expect("client handshake");
    tls.write_all(b"ping").await.expect("write");
    let mut buf = [0u8; 4];
    tls.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"ping");
    assert_eq!(
        server_task.await.expect("server"),
        Some(1),
        "the server saw the client certificate"
    );
}

#[test]
fn a_reloaded_ca_keeps_issuing_verifiable_leaves() {
    let now = Timestamp::now();
    let ca = BuiltInCa::generate(now).expect("CA");
    let reloaded = BuiltInCa::from_pem(ca.cert_pem(), &ca.key_pem()).expect("reload");
    let leaf = reloaded
        .issue("10.0.0.7", now, SignedDuration::from_hours(1))
        .expect("leaf");
    assert_eq!(leaf.ca_pem, ca.cert_pem());
    assert_eq!(
        inspect(leaf.cert_pem.as_bytes()).expect("inspect").names,
        ["10.0.0.7"]
    );
    // The chain verifies against the original CA for the IP address.
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots(ca.cert_pem())),
        provider(),
    )
    .build()
    .expect("verifier");
    let end_entity = chain(&leaf.cert_pem).remove(0);
    let ip = ServerName::try_from("10.0.0.7").expect("ip");
    let now_pki = rustls::pki_types::UnixTime::now();
    verifier
        .verify_server_cert(&end_entity, &[], &ip, &[], now_pki)
        .expect("verifies");
}

#[test]
fn renewal_at_the_atsigns_point_of_life_and_reissue_reasons() {
    let t0 = Timestamp::from_second(1_900_000_000).expect("time");
    let ca = BuiltInCa::generate(t0).expect("CA");
    let other_ca = BuiltInCa::generate(t0).expect("CA");
    let host = "alice.example";
    let leaf = ca
        .issue(host, t0, SignedDuration::from_hours(90))
        .expect("leaf");
    let info = inspect(leaf.cert_pem.as_bytes()).expect("inspect");
    // Valid from five minutes before issue (clock skew) for the lifetime.
    assert_eq!(info.not_before, t0 - SignedDuration::from_mins(5));
    assert_eq!(info.not_after, t0 + SignedDuration::from_hours(90));
    let point = RenewalPoint::for_atsign("fleet", "alice");
    let renewal = point.time(&info);
    let life = info.not_after.duration_since(info.not_before);
    assert!(renewal >= info.not_before + life * 3 / 5 && renewal < info.not_before + life * 3 / 4);

    let current = Some((leaf.cert_pem.as_bytes(), leaf.ca_pem.as_bytes()));
    let ca_pem = ca.cert_pem().as_bytes();
    assert_eq!(reissue_reason(current, ca_pem, host, t0, point), None);
    let just_before = renewal - SignedDuration::from_secs(1);
    assert_eq!(
        reissue_reason(current, ca_pem, host, just_before, point),
        None
    );
    assert_eq!(
        reissue_reason(current, ca_pem, host, renewal, point),
        Some(ReissueReason::DueForRenewal)
    );
    assert_eq!(
        reissue_reason(current, ca_pem, "bob.example", t0, point),
        Some(ReissueReason::HostChanged)
    );
    assert_eq!(
        reissue_reason(current, other_ca.cert_pem().as_bytes(), host, t0, point),
        Some(ReissueReason::IssuerChanged)
    );
    assert_eq!(
        reissue_reason(None, ca_pem, host, t0, point),
        Some(ReissueReason::Missing)
    );
    assert_eq!(
        reissue_reason(
            Some((b"garbage".as_slice(), ca_pem)),
            ca_pem,
            host,
            t0,
            point
        ),
        Some(ReissueReason::Unreadable)
    );
}
