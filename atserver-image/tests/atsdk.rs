//! Interoperability with Atsign's own Python SDK (atsdk): onboarding through CRAM by a test
//! helper, then atsdk authenticates with PKAM via an in-test root, puts/gets public and self
//! data, scans, deletes, and receives a self-notification on a monitor connection.

mod common;

use std::sync::Arc;
use std::time::Duration;

use atfleet_test_support::python::run_script;
use common::{keys, Client, TestServer, SECRET};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A tiny atDirectory: `@`, then `host:port\r\n@` for every lookup line.
async fn root_responder(server: &TestServer, answer: String) -> std::net::SocketAddr {
    let reloader =
        atserver::tls::CertReloader::new(&server.pki.cert_path, &server.pki.key_path).unwrap();
    let config = atserver::tls::server_config(reloader, None).unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let answer = answer.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let (rd, mut wr) = tokio::io::split(tls);
                if wr.write_all(b"@").await.is_err() || wr.flush().await.is_err() {
                    return;
                }
                let mut lines = BufReader::new(rd).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let reply = if line
                        .trim()
                        .trim_start_matches('@')
                        .eq_ignore_ascii_case("alice")
                    {
                        format!("{answer}\r\n@")
                    } else {
                        "null\r\n@".to_string()
                    };
                    if wr.write_all(reply.as_bytes()).await.is_err() || wr.flush().await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// The legacy onboarding of atprotocol.md §6.3, writing the `.atKeys` file atsdk loads.
async fn onboard(server: &TestServer, keys_dir: &std::path::Path) {
    let pkam = keys::rsa_keypair();
    let enc = keys::rsa_keypair();
    std::fs::create_dir_all(keys_dir).unwrap();
    std::fs::write(
        keys_dir.join("@alice_key.atKeys"),
        keys::atkeys_json("@alice", &pkam, &enc),
    )
    .unwrap();
    let mut c: Client = server.connect().await;
    c.cram(SECRET).await;
    assert_eq!(
        c.send(&format!(
            "update:privatekey:at_pkam_publickey {}",
            pkam.public
        ))
        .await,
        "data:-1"
    );
    assert_eq!(c.pkam(&pkam.private, None).await, "data:success");
    assert!(c
        .send(&format!("update:public:publickey@alice {}", enc.public))
        .await
        .starts_with("data:"));
    assert_eq!(c.send("delete:privatekey:at_secret").await, "data:-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atsdk_python_sdk_interoperates() {
    // Real time: atsdk stamps and waits with the wall clock.
    let server =
        TestServer::start_with(|c| c.stats_notification_interval = Some(Duration::from_secs(5)))
            .await;
    let root = root_responder(&server, format!("127.0.0.1:{}", server.addr.port())).await;
    let keys_dir = server.tmp.path().join("keys");
    onboard(&server, &keys_dir).await;

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/atsdk_client.py");
    let mut keys_arg = keys_dir.into_os_string();
    keys_arg.push("/");
    let args = [keys_arg, "127.0.0.1".into(), root.port().to_string().into()];
    let limit = Duration::from_secs(180);
    let stdout = run_script(
        script,
        &args,
        &server.pki.ca_path,
        limit,
        "ATSDK-INTEROP-OK",
    )
    .await;
    eprintln!("{stdout}");
    server.stop().await;
}
