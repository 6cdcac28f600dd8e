//! `info:mtls` and `info:mtlsbrief` over TLS: the certificate chain this atServer presents to
//! peers as its client certificate, and when its files last changed (reference 3.9's shapes).

mod common;

use common::{json, TestServer};

#[tokio::test]
async fn info_mtls_shows_the_client_certificate_presented_to_peers() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    let pem = std::fs::read_to_string(&server.pki.cert_path).unwrap();

    let full = json(&c.send("info:mtls").await);
    assert_eq!(full["mtls_fullchain"], pem.as_str());
    assert!(full["version"].is_string());

    let brief = json(&c.send("info:mtlsbrief").await);
    let modified = |path: &std::path::Path| {
        let t = std::fs::metadata(path).unwrap().modified().unwrap();
        jiff::Timestamp::try_from(t).unwrap()
    };
    for (member, path) in [
        ("mtls_fullchain_last_modified", &server.pki.cert_path),
        ("mtls_privkey_last_modified", &server.pki.key_path),
    ] {
        let text = brief[member]
            .as_str()
            .unwrap_or_else(|| panic!("{member}: {brief}"));
        let stated: jiff::Timestamp = text.parse().unwrap();
        // ISO-8601 UTC at millisecond precision, as Dart's toIso8601String writes it.
        assert!(text.ends_with('Z'), "{text}");
        assert_eq!(
            stated.as_millisecond(),
            modified(path).as_millisecond(),
            "{member}"
        );
    }

    // A renewed certificate shows at once (the files are read on each request).
    server.pki.issue_leaf("renewed");
    let renewed = std::fs::read_to_string(&server.pki.cert_path).unwrap();
    assert_ne!(renewed, pem);
    assert_eq!(
        json(&c.send("info:mtls").await)["mtls_fullchain"],
        renewed.as_str()
    );
    assert!(c.send("info:mtlsx").await.starts_with("error:AT0003"));
    server.stop().await;
}
