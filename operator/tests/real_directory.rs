//! The controller against the real atDirectory (registration API and Postgres), checked through
//! the root protocol over TLS as clients resolve atSigns. Needs `DATABASE_URL` (a throwaway
//! cluster: `scripts/with-postgres -- cargo test -p atfleet-operator`; `make test` provides it).

mod common;

use at_protocol::client::{ClientConfig, RootClient, TlsOptions};
use at_protocol::AtSign;
use atfleet_operator::crd::Atsign;
use clap::Parser;
use common::*;
use kube::api::DeleteParams;
use kube::Api;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_atsigns_resolve_through_the_real_directory() {
    let database_url = fleet::fresh_database().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let (cert_path, key_path, token_path) = (
        tmp.path().join("tls.crt"),
        tmp.path().join("tls.key"),
        tmp.path().join("token"),
    );
    std::fs::write(&cert_path, cert.cert.pem()).expect("write");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write");
    std::fs::write(&token_path, TOKEN).expect("write");
    let path = |p: &std::path::Path| p.display().to_string();
    let cli = atdirectory::Cli::try_parse_from([
        "atdirectory".to_owned(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--http-listen".into(),
        "127.0.0.1:0".into(),
        "--tls-cert".into(),
        path(&cert_path),
        "--tls-key".into(),
        path(&key_path),
        "--database-url".into(),
        database_url,
        "--api-token-file".into(),
        path(&token_path),
    ])
    .expect("flags");
    let directory = atdirectory::start(cli.config)
        .await
        .expect("directory starts");

    let (sim, client) = cluster().await;
    let dir = Directory {
        url: format!("http://{}", directory.http_addr),
        state: Default::default(),
    };
    let op = operator(Some(&dir), None);
    create_atsign(&client, "quinn", json!({})).await;
    wait_condition(&client, "quinn", "Ready", "True").await;

    let tls = TlsOptions::from_ca_pem(cert.cert.pem().as_bytes()).expect("trust");
    let root = RootClient::new(
        ClientConfig::new(tls).expect("client config"),
        "localhost",
        directory.root_addr.port(),
    );
    let quinn = AtSign::parse("@quinn").expect("atSign");
    assert_eq!(
        root.lookup(&quinn).await.expect("lookup"),
        Some((format!("quinn.{}.svc.cluster.local", ns()), 6464))
    );

    // Delete: the directory stops answering once the finalizer has run.
    let atsigns: Api<Atsign> = Api::namespaced(client.clone(), ns());
    atsigns
        .delete("quinn", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("Atsign gone", || async {
        atsigns.get_opt("quinn").await.expect("get").is_none()
    })
    .await;
    assert_eq!(root.lookup(&quinn).await.expect("lookup"), None);

    op.stop().await;
    sim.shutdown().await;
    directory.shutdown().await;
}
