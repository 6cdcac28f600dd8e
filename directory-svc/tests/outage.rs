//! Postgres goes away and comes back: cached atSigns keep being answered, /readyz reports the outage,
//! and the directory recovers without a restart (acceptance 5). Uses its own PostgreSQL cluster, since
//! stopping the shared one would break tests running in parallel.

mod common;

use std::time::Duration;

use common::http::Api;
use common::pg::PrivatePostgres;
use common::process::DirectoryProcess;
use common::root::RootConn;
use common::{fresh_database_on, Fixture, TOKEN};
use hyper::StatusCode;
use sqlx::Connection;
use tokio::time::Instant;

async fn until_ready(api: &Api, want: StatusCode) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if api.get("/readyz").await.status == want {
            return;
        }
        assert!(Instant::now() < deadline, "/readyz never became {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn cached_answers_survive_a_database_outage_and_the_directory_recovers() {
    let mut pg = PrivatePostgres::start();
    let url = fresh_database_on(&pg.url).await;
    let fixture = Fixture::with_database(url.clone());
    let dir = DirectoryProcess::spawn(fixture.args(&[
        "--db-check-interval-ms",
        "200",
        "--db-timeout-ms",
        "1000",
        "--negative-ttl-ms",
        "600000",
        "--miss-allowance",
        "100000",
    ]))
    .await;
    let api = Api::new(dir.http_addr, Some(TOKEN));
    api.register("alice", "alice.example", 6464, "op-a").await;
    let mut conn = RootConn::connect(dir.root_addr, fixture.pki.client_config()).await;
    assert_eq!(conn.lookup("alice").await, "alice.example:6464\r\n@");
    until_ready(&api, StatusCode::OK).await;

    pg.down();
    until_ready(&api, StatusCode::SERVICE_UNAVAILABLE).await;
    let ready = api.get("/readyz").await.json();
    assert_eq!(ready["database"], "down");
    // Cached: answered on the old connection and on a new one.
    assert_eq!(conn.lookup("alice").await, "alice.example:6464\r\n@");
    let mut fresh = RootConn::connect(dir.root_addr, fixture.pki.client_config()).await;
    assert_eq!(fresh.lookup("@ALICE").await, "alice.example:6464\r\n@");
    // Not cached: the connection is closed at once, neither hanging nor answering `null` (which
    // would tell the client carol does not exist; she may).
    fresh.send(b"carol\n").await;
    assert!(
        fresh.closed().await,
        "an uncached lookup during the outage was answered"
    );
    // Writes fail cleanly.
    let write = api
        .put(
            "/v1/atsigns/bob",
            serde_json::json!({"host": "b.example", "port": 1, "owner": "op-a"}),
        )
        .await;
    assert_eq!(
        write.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        write.text
    );
    assert_eq!(write.json()["error"], "database_unavailable");

    pg.up();
    until_ready(&api, StatusCode::OK).await;
    let created = api
        .put(
            "/v1/atsigns/bob",
            serde_json::json!({"host": "b.example", "port": 1, "owner": "op-a"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(conn.lookup("bob").await, "b.example:1\r\n@");

    // The change listener is back too: an out-of-band write (as with psql) reaches the cache even
    // though "dave" is remembered as not found for ten minutes.
    assert_eq!(conn.lookup("dave").await, "null\r\n@");
    let mut sql = sqlx::PgConnection::connect(&url).await.expect("connect");
    sqlx::query(
        "INSERT INTO atsigns (atsign, host, port, owner) VALUES ('dave', 'd.example', 4, 'psql')",
    )
    .execute(&mut sql)
    .await
    .expect("insert");
    let deadline = Instant::now() + Duration::from_secs(30);
    while conn.lookup("dave").await != "d.example:4\r\n@" {
        assert!(
            Instant::now() < deadline,
            "notification after recovery never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    dir.stop().await;
}
