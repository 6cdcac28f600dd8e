//! Two directory processes on one database: a change through one is answered by the other within a
//! second, without a restart (acceptance 4).

mod common;

use std::time::Duration;

use common::http::Api;
use common::process::DirectoryProcess;
use common::root::RootConn;
use common::{Fixture, TOKEN};
use tokio::time::Instant;

/// Polls `conn` until `line` resolves to `want`, and returns how long that took.
async fn until_answer(conn: &mut RootConn, line: &str, want: &str, since: Instant) -> Duration {
    let deadline = since + Duration::from_secs(10);
    loop {
        if conn.lookup(line).await == want {
            return since.elapsed();
        }
        assert!(Instant::now() < deadline, "{line} never became {want:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn registration_through_one_replica_is_answered_by_the_other() {
    let fixture = Fixture::new().await;
    // Cache lifetimes far beyond the test: only notifications can make replica B change its answers.
    let args = fixture.args(&[
        "--cache-ttl-ms",
        "600000",
        "--negative-ttl-ms",
        "600000",
        "--miss-allowance",
        "100000",
    ]);
    let a = DirectoryProcess::spawn(args.clone()).await;
    // B also runs without a rate limit (a configuration whose limiter has no background work).
    let mut b_args = args;
    b_args.extend(["--rate-limit-per-second".to_string(), "0".to_string()]);
    let b = DirectoryProcess::spawn(b_args).await;
    let api_a = Api::new(a.http_addr, Some(TOKEN));
    let mut root_b = RootConn::connect(b.root_addr, fixture.pki.client_config()).await;

    api_a.register("alice", "one.example", 1001, "op-a").await;
    until_answer(
        &mut root_b,
        "alice",
        "one.example:1001\r\n@",
        Instant::now(),
    )
    .await;
    // B now holds alice (found) and bob (not found) in its cache.
    assert_eq!(root_b.lookup("bob").await, "null\r\n@");

    let t = Instant::now();
    api_a.register("bob", "two.example", 1002, "op-a").await;
    let took = until_answer(&mut root_b, "bob", "two.example:1002\r\n@", t).await;
    assert!(
        took < Duration::from_secs(1),
        "new registration reached B after {took:?}"
    );

    let t = Instant::now();
    api_a.register("alice", "three.example", 1003, "op-a").await;
    let took = until_answer(&mut root_b, "alice", "three.example:1003\r\n@", t).await;
    assert!(
        took < Duration::from_secs(1),
        "moved registration reached B after {took:?}"
    );

    let t = Instant::now();
    let deleted = api_a.delete("/v1/atsigns/bob?owner=op-a").await;
    assert_eq!(deleted.status.as_u16(), 204);
    let took = until_answer(&mut root_b, "bob", "null\r\n@", t).await;
    assert!(
        took < Duration::from_secs(1),
        "deletion reached B after {took:?}"
    );

    let metrics = Api::new(b.http_addr, None).get("/metrics").await.text;
    assert!(
        metrics.contains(r#"atdirectory_cache_notifications_total{op="upsert"}"#),
        "{metrics}"
    );
    a.stop().await;
    b.stop().await;
}
