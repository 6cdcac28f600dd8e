//! Operations: HTTP health/readiness/metrics, connection limit, certificate reload without
//! dropping connections, graceful shutdown.

mod common;

use std::time::Duration;

use common::{Client, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = TestServer::start().await;
    let http = server.handle().http_addr.unwrap();
    assert_eq!(http_get(http, "/healthz").await.0, 200);
    assert_eq!(http_get(http, "/readyz").await, (200, "ready".to_string()));
    let mut c = server.owner().await;
    c.send("update:x.app@alice 1").await;
    c.send("llookup:nothing@alice").await;
    let (status, body) = http_get(http, "/metrics").await;
    assert_eq!(status, 200);
    for needle in [
        r#"atserver_commands_total{verb="update",outcome="ok"} 1"#,
        r#"atserver_commands_total{verb="llookup",outcome="error"} 1"#,
        r#"atserver_connections{type="owner"} 1"#,
        "atserver_command_duration_seconds_bucket",
        r#"atserver_notifications{status="queued"}"#,
        "atserver_store_bytes ",
        "atserver_last_commit_id 3",
    ] {
        assert!(body.contains(needle), "missing {needle} in\n{body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn connection_limit_answers_at0012() {
    let server = TestServer::start_with(|c| c.limits.max_connections = 2).await;
    let mut a = server.connect().await;
    let _b = server.connect().await;
    let mut third = Client::connect_raw(server.addr, &server.pki).await;
    assert_eq!(
        third.read_line().await,
        "error:AT0012-Inbound connection limit exceeded"
    );
    assert!(third.closed().await);
    // Closing one frees a slot.
    a.write(b"@exit\n").await;
    assert!(a.closed().await);
    let mut ok = None;
    for _ in 0..500 {
        let mut c = Client::connect_raw(server.addr, &server.pki).await;
        if c.read_exact_str(1).await == "@" {
            ok = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok.is_some());
    server.stop().await;
}

fn served_cn(c: &Client) -> String {
    let der = c.peer_certificate();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    cn
}

#[tokio::test]
async fn certificate_reload_keeps_live_connections() {
    let server = TestServer::start().await;
    let mut live = server.owner().await;
    assert_eq!(served_cn(&live), "atserver");
    server.pki.issue_leaf("rotated");
    let mut rotated = false;
    for _ in 0..800 {
        let c = server.connect().await;
        if served_cn(&c) == "rotated" {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(rotated, "new certificate was not served");
    assert_eq!(live.send("noop:0").await, "data:ok");
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_closes_connections() {
    let server = TestServer::start().await;
    let mut c = server.owner().await;
    let addr = server.addr;
    server.stop().await;
    assert!(c.closed().await);
    assert!(TcpStream::connect(addr).await.is_err());
}
