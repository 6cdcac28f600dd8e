//! The root protocol over TLS against the real server and a real database (acceptance 2).

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::http::Api;
use common::root::RootConn;
use common::{Fixture, TOKEN};
use tokio::time::Instant;

async fn registered(fixture: &Fixture, extra: &[&str]) -> (atdirectory::Running, Api) {
    let server = fixture.start(extra).await;
    let api = Api::new(server.http_addr, Some(TOKEN));
    // Registered only once the cache follows changes: a listener connecting later would mark the
    // cache stale and make the hit/miss counts depend on timing.
    wait_for_metric(&api, "atdirectory_change_listener_up 1").await;
    api.register("@alice", "alice.fleet.example", 6464, "op-a")
        .await;
    api.register("colinconstable", "127.0.0.1", 25000, "op-a")
        .await;
    (server, api)
}

async fn wait_for_metric(api: &Api, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !api.get("/metrics").await.text.contains(needle) {
        assert!(Instant::now() < deadline, "metrics never showed {needle:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn lookups_found_not_found_prefix_case_many_on_one_connection() {
    let fixture = Fixture::new().await;
    let (server, _api) = registered(&fixture, &["--miss-allowance", "100"]).await;
    let mut conn = RootConn::connect(server.root_addr, fixture.pki.client_config()).await;
    for _ in 0..3 {
        assert_eq!(conn.lookup("alice").await, "alice.fleet.example:6464\r\n@");
        assert_eq!(conn.lookup("@alice").await, "alice.fleet.example:6464\r\n@");
        assert_eq!(conn.lookup("ALICE").await, "alice.fleet.example:6464\r\n@");
        assert_eq!(
            conn.lookup("@Colin.Constable").await,
            "127.0.0.1:25000\r\n@"
        );
        assert_eq!(conn.lookup("nobody").await, "null\r\n@");
        // CRLF-terminated lines (the C client) are the same lookup.
        conn.send(b"Alice\r\n").await;
        assert_eq!(
            conn.reply().await.as_deref(),
            Some("alice.fleet.example:6464\r\n@")
        );
        // Not an atSign at all, or not even UTF-8: answered, and the connection stays usable.
        assert_eq!(conn.lookup("a:b").await, "null\r\n@");
        conn.send(b"\xff\xfe\n").await;
        assert_eq!(conn.reply().await.as_deref(), Some("null\r\n@"));
    }
    let metrics = Api::new(server.http_addr, None).get("/metrics").await.text;
    for line in [
        r#"atdirectory_lookups_total{result="found"} 15"#,
        r#"atdirectory_lookups_total{result="not_found"} 3"#,
        r#"atdirectory_lookups_total{result="invalid"} 6"#,
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    // Registrations warm the cache and "nobody" is then cached as not found, so the database is asked
    // at most three times (once more for each registration whose change notification is still in flight
    // when the first lookup arrives).
    let hits = common::metric(&metrics, "atdirectory_cache_hits_total");
    let misses = common::metric(&metrics, "atdirectory_cache_misses_total");
    assert_eq!(hits + misses, 18.0, "{metrics}");
    assert!((1.0..=3.0).contains(&misses), "{metrics}");
    server.shutdown().await;
}

#[tokio::test]
async fn blank_line_is_answered_and_exit_closes() {
    let fixture = Fixture::new().await;
    let (server, _api) = registered(&fixture, &[]).await;
    let mut conn = RootConn::connect(server.root_addr, fixture.pki.client_config()).await;
    conn.send(b"\r\n").await;
    assert_eq!(conn.reply().await.as_deref(), Some("null\r\n@"));
    assert_eq!(conn.lookup("alice").await, "alice.fleet.example:6464\r\n@");
    conn.send(b"@exit\n").await;
    assert!(conn.closed().await, "@exit closes without a reply");
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_line_closes_the_connection() {
    let fixture = Fixture::new().await;
    let (server, _api) = registered(&fixture, &["--max-line", "64"]).await;
    let mut conn = RootConn::connect(server.root_addr, fixture.pki.client_config()).await;
    assert_eq!(conn.lookup("alice").await, "alice.fleet.example:6464\r\n@");
    conn.send(format!("{}\n", "a".repeat(200)).as_bytes()).await;
    assert!(conn.closed().await);
    // Other connections are unaffected.
    let mut other = RootConn::connect(server.root_addr, fixture.pki.client_config()).await;
    assert_eq!(other.lookup("alice").await, "alice.fleet.example:6464\r\n@");
    server.shutdown().await;
}

#[tokio::test]
async fn repeated_misses_are_delayed_but_hits_are_not() {
    let fixture = Fixture::new().await;
    let delay = Duration::from_millis(700);
    let (server, api) = registered(
        &fixture,
        &["--miss-allowance", "1", "--miss-delay-ms", "700"],
    )
    .await;
    let mut conn = RootConn::connect(server.root_addr, fixture.pki.client_config()).await;
    assert_eq!(conn.lookup("nobody1").await, "null\r\n@");
    for i in 2..4 {
        let start = Instant::now();
        assert_eq!(conn.lookup(&format!("nobody{i}")).await, "null\r\n@");
        assert!(
            start.elapsed() >= delay,
            "miss {i} answered after {:?}",
            start.elapsed()
        );
    }
    // Found lookups keep working on the same connection, and the delays are counted.
    assert_eq!(conn.lookup("alice").await, "alice.fleet.example:6464\r\n@");
    let metrics = api.get("/metrics").await.text;
    assert!(
        metrics.contains("atdirectory_miss_delays_total 2"),
        "{metrics}"
    );
    // A fresh connection starts with a fresh allowance.
    let mut fresh = RootConn::connect(server.root_addr, fixture.pki.client_config()).await;
    assert_eq!(fresh.lookup("nobody1").await, "null\r\n@");
    let metrics = api.get("/metrics").await.text;
    assert!(
        metrics.contains("atdirectory_miss_delays_total 2"),
        "first miss not delayed: {metrics}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn per_source_rate_limit_refuses_lookups_and_connections() {
    let fixture = Fixture::new().await;
    // A burst of 6 tokens per source, refilled at one a second: the connection and 5 lookups pass.
    let (server, api) = registered(
        &fixture,
        &[
            "--rate-limit-per-second",
            "1",
            "--rate-limit-burst",
            "6",
            "--miss-allowance",
            "100",
        ],
    )
    .await;
    let cfg = fixture.pki.client_config();
    let abuser: IpAddr = [127, 0, 0, 1].into();
    let mut conn = RootConn::try_connect_from(server.root_addr, cfg.clone(), Some(abuser))
        .await
        .expect("connect");
    for _ in 0..5 {
        assert_eq!(conn.lookup("alice").await, "alice.fleet.example:6464\r\n@");
    }
    // The bucket refills one token a second, so on a slow machine a request or two more may pass;
    // requests come far faster than that, so the source is soon refused.
    let mut refused = false;
    for _ in 0..20 {
        conn.send(b"alice\n").await;
        if conn.reply().await.is_none() {
            refused = true;
            break;
        }
    }
    assert!(refused, "a lookup over the limit closes the connection");
    let mut refused = false;
    for _ in 0..20 {
        if RootConn::try_connect_from(server.root_addr, cfg.clone(), Some(abuser))
            .await
            .is_none()
        {
            refused = true;
            break;
        }
    }
    assert!(refused, "a connection over the limit is closed before TLS");
    // Another source has its own bucket.
    let mut other = RootConn::try_connect_from(server.root_addr, cfg, Some([127, 0, 0, 2].into()))
        .await
        .expect("another source connects");
    assert_eq!(other.lookup("alice").await, "alice.fleet.example:6464\r\n@");
    let metrics = api.get("/metrics").await.text;
    let rejected = common::metric(
        &metrics,
        r#"atdirectory_root_rejections_total{reason="rate_limited"}"#,
    );
    assert!(rejected >= 2.0, "{metrics}");
    server.shutdown().await;
}

#[tokio::test]
async fn idle_unused_connections_are_closed_but_used_ones_stay_open() {
    let fixture = Fixture::new().await;
    let (server, _api) = registered(&fixture, &["--idle-timeout-ms", "300"]).await;
    let mut idle = RootConn::connect(server.root_addr, fixture.pki.client_config()).await;
    let mut used = RootConn::connect(server.root_addr, fixture.pki.client_config()).await;
    assert_eq!(used.lookup("alice").await, "alice.fleet.example:6464\r\n@");
    assert!(
        idle.closed().await,
        "an unused connection is closed when idle"
    );
    // Well past the idle timeout, the used connection still answers (the Python SDK never reconnects).
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(used.lookup("alice").await, "alice.fleet.example:6464\r\n@");
    server.shutdown().await;
}

#[tokio::test]
async fn handshake_timeout_and_connection_cap() {
    let fixture = Fixture::new().await;
    let (server, api) = registered(
        &fixture,
        &["--handshake-timeout-ms", "300", "--max-connections", "2"],
    )
    .await;
    // A client that never starts TLS is dropped.
    let mut silent = tokio::net::TcpStream::connect(server.root_addr)
        .await
        .expect("connect");
    let mut buf = [0u8; 16];
    let n = tokio::io::AsyncReadExt::read(&mut silent, &mut buf)
        .await
        .unwrap_or(0);
    assert_eq!(n, 0, "handshake timeout closes the socket");
    // Its slot is released just after the socket closes.
    wait_for_metric(&api, "atdirectory_root_connections 0").await;
    // Two connections fill the cap; a third is closed at once; after one leaves, a new one is accepted.
    let mut a = RootConn::connect(server.root_addr, fixture.pki.client_config()).await;
    let mut b = RootConn::connect(server.root_addr, fixture.pki.client_config()).await;
    assert_eq!(a.lookup("alice").await, "alice.fleet.example:6464\r\n@");
    assert_eq!(b.lookup("alice").await, "alice.fleet.example:6464\r\n@");
    let third = tokio::net::TcpStream::connect(server.root_addr)
        .await
        .expect("connect");
    let cfg = fixture.pki.client_config();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    assert!(
        tokio_rustls::TlsConnector::from(cfg)
            .connect(name, third)
            .await
            .is_err(),
        "over the cap"
    );
    a.send(b"@exit\n").await;
    assert!(a.closed().await);
    let metrics = api.get("/metrics").await.text;
    assert!(
        metrics.contains(r#"reason="max_connections"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"reason="handshake_timeout"} 1"#),
        "{metrics}"
    );
    // The slot is released when the session task ends; wait for it through the gauge.
    wait_for_metric(&api, "atdirectory_root_connections 1").await;
    let mut c = RootConn::connect(server.root_addr, fixture.pki.client_config()).await;
    assert_eq!(c.lookup("alice").await, "alice.fleet.example:6464\r\n@");
    server.shutdown().await;
}

#[tokio::test]
async fn certificate_is_reloaded_for_new_connections() {
    let fixture = Fixture::new().await;
    let (server, _api) = registered(&fixture, &["--tls-reload-interval-ms", "100"]).await;
    let mut old = RootConn::connect(server.root_addr, fixture.pki.client_config()).await;
    let first = old.peer_certificate();
    fixture.pki.issue("second");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let conn = RootConn::connect(server.root_addr, fixture.pki.client_config()).await;
        if conn.peer_certificate() != first {
            break;
        }
        assert!(Instant::now() < deadline, "new certificate never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The connection made before the reload keeps working.
    assert_eq!(old.lookup("alice").await, "alice.fleet.example:6464\r\n@");
    server.shutdown().await;
}

#[tokio::test]
async fn random_bytes_never_break_the_server() {
    use rand::{Rng, SeedableRng};
    let fixture = Fixture::new().await;
    let (server, _api) = registered(
        &fixture,
        &["--miss-allowance", "100000", "--max-line", "64"],
    )
    .await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    for _ in 0..20 {
        let mut conn = RootConn::connect(server.root_addr, fixture.pki.client_config()).await;
        for _ in 0..20 {
            let len = rng.gen_range(0..100);
            let mut line: Vec<u8> = (0..len)
                .map(|_| rng.gen::<u8>())
                .filter(|b| *b != b'\n')
                .collect();
            line.push(b'\n');
            conn.send(&line).await;
            match conn.reply().await {
                // Anything that is not a registered atSign is a miss.
                Some(reply) => assert!(
                    reply == "null\r\n@"
                        || reply.ends_with(":6464\r\n@")
                        || reply.ends_with(":25000\r\n@"),
                    "{reply:?} for {line:?}"
                ),
                // Only an overlong line or "@exit" may close the connection.
                None => {
                    assert!(
                        len > 64 || line.eq_ignore_ascii_case(b"@exit\n"),
                        "closed after {line:?}"
                    );
                    break;
                }
            }
        }
    }
    let mut conn = RootConn::connect(server.root_addr, fixture.pki.client_config()).await;
    assert_eq!(conn.lookup("alice").await, "alice.fleet.example:6464\r\n@");
    server.shutdown().await;
}
