//! The project's own root client (`at_protocol::client::RootClient`, used by atctl and the atServer)
//! resolves through this directory on one reused connection.

mod common;

use at_protocol::client::{ClientConfig, RootClient, TlsOptions};
use at_protocol::AtSign;
use common::http::Api;
use common::{Fixture, TOKEN};

fn atsign(s: &str) -> AtSign {
    AtSign::parse(s).expect("atSign")
}

#[tokio::test]
async fn rust_root_client_resolves_and_sees_changes() {
    let fixture = Fixture::new().await;
    let server = fixture.start(&["--miss-allowance", "100"]).await;
    let api = Api::new(server.http_addr, Some(TOKEN));
    api.register("alice", "alice.fleet.example", 6464, "op-a")
        .await;

    let tls = TlsOptions::from_ca_pem_file(&fixture.pki.ca_path()).expect("CA");
    let client = RootClient::new(
        ClientConfig::new(tls).expect("config"),
        "localhost",
        server.root_addr.port(),
    );
    let alice = Some(("alice.fleet.example".to_string(), 6464));
    assert_eq!(
        client.lookup(&atsign("@alice")).await.expect("lookup"),
        alice
    );
    assert_eq!(
        client.lookup(&atsign("@Alice")).await.expect("lookup"),
        alice
    );
    assert_eq!(client.lookup(&atsign("@bob")).await.expect("lookup"), None);

    api.register("bob", "10.1.2.3", 7000, "op-a").await;
    assert_eq!(
        client.lookup(&atsign("bob")).await.expect("lookup"),
        Some(("10.1.2.3".to_string(), 7000))
    );
    let metrics = api.get("/metrics").await.text;
    assert!(
        metrics.contains(r#"atdirectory_lookups_total{result="found"} 3"#),
        "{metrics}"
    );
    server.shutdown().await;
}
