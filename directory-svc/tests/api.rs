//! The registration API over HTTP against the real server and database (acceptance 3).

mod common;

use common::http::Api;
use common::{Fixture, TOKEN};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

async fn server() -> (Fixture, atdirectory::Running, Api) {
    let fixture = Fixture::new().await;
    let server = fixture.start(&[]).await;
    let api = Api::new(server.http_addr, Some(TOKEN));
    (fixture, server, api)
}

fn body(host: &str, port: u16, owner: &str) -> Value {
    json!({"host": host, "port": port, "owner": owner})
}

#[tokio::test]
async fn create_read_update_delete() {
    let (_f, server, api) = server().await;
    let created = api
        .put(
            "/v1/atsigns/@Alice",
            body("alice.fleet.example", 6464, "op-a"),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let record = created.json();
    assert_eq!(record["atsign"], "@alice");
    assert_eq!(record["host"], "alice.fleet.example");
    assert_eq!(record["port"], 6464);
    assert_eq!(record["owner"], "op-a");
    let created_at = record["createdAt"].as_str().expect("createdAt").to_string();
    assert!(
        created_at.parse::<jiff::Timestamp>().is_ok(),
        "RFC 3339: {created_at}"
    );

    // Read with and without @, and URL-encoded @.
    for path in [
        "/v1/atsigns/alice",
        "/v1/atsigns/%40alice",
        "/v1/atsigns/@ALICE",
    ] {
        let got = api.get(path).await;
        assert_eq!(got.status, StatusCode::OK, "{path}: {}", got.text);
        assert_eq!(got.json(), record);
    }

    // Same owner updates: 200, createdAt kept, updatedAt moves on.
    let updated = api
        .put("/v1/atsigns/alice", body("10.0.0.7", 7000, "op-a"))
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    let updated = updated.json();
    assert_eq!(updated["host"], "10.0.0.7");
    assert_eq!(updated["createdAt"], created_at.as_str());
    assert!(updated["updatedAt"].as_str() >= Some(created_at.as_str()));

    let missing_owner = api.delete("/v1/atsigns/alice").await;
    assert_eq!(missing_owner.status, StatusCode::BAD_REQUEST);
    let deleted = api.delete("/v1/atsigns/alice?owner=op-a").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert_eq!(
        api.get("/v1/atsigns/alice").await.status,
        StatusCode::NOT_FOUND
    );
    let again = api.delete("/v1/atsigns/alice?owner=op-a").await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(again.json()["error"], "not_found");

    let metrics = api.get("/metrics").await.text;
    assert!(
        metrics.contains(r#"atdirectory_registrations_total{op="put",result="created"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("atdirectory_db_query_duration_seconds_bucket"),
        "{metrics}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn list_is_paginated_in_atsign_order() {
    let (_f, server, api) = server().await;
    let names: Vec<String> = (0..7).map(|i| format!("user{i:02}")).collect();
    for name in names.iter().rev() {
        api.register(name, "h.example", 1000, "op-a").await;
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/atsigns?limit=3&after={}", a.replace('@', "%40")),
            None => "/v1/atsigns?limit=3".to_string(),
        };
        let page = api.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let page = page.json();
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 3);
        seen.extend(
            items
                .iter()
                .map(|i| i["atsign"].as_str().expect("atsign").to_string()),
        );
        pages += 1;
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = names.iter().map(|n| format!("@{n}")).collect();
    assert_eq!(seen, expected);
    for bad in [
        "/v1/atsigns?limit=0",
        "/v1/atsigns?limit=5000",
        "/v1/atsigns?limit=x",
        "/v1/atsigns?after=a:b",
    ] {
        let reply = api.get(bad).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(!reply.json()["message"].as_str().unwrap_or("").is_empty());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn token_missing_or_wrong_is_401() {
    let (_f, server, api) = server().await;
    for client in [
        api.with_token(None),
        api.with_token(Some("wrong")),
        api.with_token(Some("")),
    ] {
        for (method, path) in [
            (Method::GET, "/v1/atsigns"),
            (Method::GET, "/v1/atsigns/alice"),
            (Method::PUT, "/v1/atsigns/alice"),
            (Method::DELETE, "/v1/atsigns/alice?owner=a"),
        ] {
            let body = (method == Method::PUT).then(|| body("h.example", 1, "a"));
            let reply = client.send(method.clone(), path, body).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert_eq!(reply.json()["error"], "unauthorized");
        }
    }
    // Nothing was written.
    assert_eq!(
        api.get("/v1/atsigns/alice").await.status,
        StatusCode::NOT_FOUND
    );
    // Operations endpoints need no token.
    let open = api.with_token(None);
    assert_eq!(open.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(open.get("/readyz").await.status, StatusCode::OK);
    assert_eq!(open.get("/metrics").await.status, StatusCode::OK);
    server.shutdown().await;
}

#[tokio::test]
async fn owner_fencing_conflict_and_forced_takeover() {
    let (_f, server, api) = server().await;
    api.register("alice", "a.example", 1, "op-a").await;
    let conflict = api
        .put("/v1/atsigns/alice", body("b.example", 2, "op-b"))
        .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.text);
    let conflict = conflict.json();
    assert_eq!(conflict["error"], "owner_conflict");
    assert_eq!(conflict["currentOwner"], "op-a");
    assert_eq!(
        api.get("/v1/atsigns/alice").await.json()["host"],
        "a.example",
        "a conflict changes nothing"
    );

    let delete = api.delete("/v1/atsigns/alice?owner=op-b").await;
    assert_eq!(delete.status, StatusCode::CONFLICT);
    assert_eq!(delete.json()["currentOwner"], "op-a");

    let taken = api
        .put("/v1/atsigns/alice?force=true", body("b.example", 2, "op-b"))
        .await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.text);
    assert_eq!(taken.json()["owner"], "op-b");
    assert_eq!(
        api.put("/v1/atsigns/alice", body("a.example", 1, "op-a"))
            .await
            .status,
        StatusCode::CONFLICT
    );

    let forced = api.delete("/v1/atsigns/alice?owner=op-a&force=true").await;
    assert_eq!(forced.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get("/v1/atsigns/alice").await.status,
        StatusCode::NOT_FOUND
    );
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_input_is_400_with_a_message() {
    let (_f, server, api) = server().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/v1/atsigns/a:b",
            body("h.example", 1, "o"),
            "invalid_atsign",
        ),
        (
            "/v1/atsigns/a%20b",
            body("h.example", 1, "o"),
            "invalid_atsign",
        ),
        ("/v1/atsigns/@", body("h.example", 1, "o"), "invalid_atsign"),
        (
            "/v1/atsigns/alice",
            body("bad host", 1, "o"),
            "invalid_host",
        ),
        ("/v1/atsigns/alice", body("::1", 1, "o"), "invalid_host"),
        ("/v1/atsigns/alice", body("", 1, "o"), "invalid_host"),
        (
            "/v1/atsigns/alice",
            json!({"host": "h.example", "port": 0, "owner": "o"}),
            "invalid_port",
        ),
        (
            "/v1/atsigns/alice",
            json!({"host": "h.example", "port": 70000, "owner": "o"}),
            "invalid_port",
        ),
        (
            "/v1/atsigns/alice",
            json!({"host": "h.example", "port": "x", "owner": "o"}),
            "invalid_body",
        ),
        (
            "/v1/atsigns/alice",
            json!({"host": "h.example", "owner": "o"}),
            "invalid_body",
        ),
        (
            "/v1/atsigns/alice",
            body("h.example", 1, ""),
            "invalid_owner",
        ),
        (
            "/v1/atsigns/alice?force=maybe",
            body("h.example", 1, "o"),
            "invalid_query",
        ),
    ];
    for (path, value, code) in cases {
        let reply = api.put(path, value.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path} {value}: {}",
            reply.text
        );
        let err = reply.json();
        assert_eq!(err["error"], code, "{path} {value}");
        assert!(
            err["message"].as_str().is_some_and(|m| m.len() > 10),
            "{path}: {err}"
        );
    }
    let not_json = api
        .send(
            Method::PUT,
            "/v1/atsigns/alice",
            Some(json!("just a string")),
        )
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        api.get("/v1/atsigns").await.json()["items"],
        json!([]),
        "nothing was stored"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_puts_from_two_owners_have_exactly_one_winner() {
    let (_f, server, api) = server().await;
    for round in 0..20 {
        let name = format!("/v1/atsigns/race{round}");
        let (a, b) = tokio::join!(
            api.put(&name, body("a.example", 1, "op-a")),
            api.put(&name, body("b.example", 2, "op-b")),
        );
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::CREATED, StatusCode::CONFLICT],
            "round {round}: {} / {}",
            a.text,
            b.text
        );
        let winner = if a.status == StatusCode::CREATED {
            "op-a"
        } else {
            "op-b"
        };
        let loser = if a.status == StatusCode::CREATED {
            &b
        } else {
            &a
        };
        assert_eq!(loser.json()["currentOwner"], winner);
        assert_eq!(api.get(&name).await.json()["owner"], winner);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn openapi_document_is_served_and_covers_every_route() {
    let (_f, server, api) = server().await;
    let served = api.with_token(None).get("/v1/openapi.json").await;
    assert_eq!(served.status, StatusCode::OK);
    let checked_in: Value = serde_json::from_str(include_str!("../openapi.json"))
        .expect("checked-in openapi.json is JSON");
    assert_eq!(
        served.json(),
        checked_in,
        "served document equals directory-svc/openapi.json"
    );
    let paths = checked_in["paths"].as_object().expect("paths");
    for (method, path) in atdirectory::api::ROUTES {
        assert!(
            paths.get(*path).and_then(|p| p.get(*method)).is_some(),
            "{method} {path} is not documented"
        );
    }
    // And every documented operation is served (not the router's fallback).
    for (path, item) in paths {
        for method in item
            .as_object()
            .expect("path item")
            .keys()
            .filter(|k| *k != "parameters")
        {
            assert!(
                atdirectory::api::ROUTES.contains(&(method.as_str(), path.as_str())),
                "{method} {path} is documented but not in ROUTES"
            );
            let concrete = path.replace("{atsign}", "alice");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let body = (method == Method::PUT).then(|| body("h.example", 1, "o"));
            let reply = api.send(method.clone(), &concrete, body).await;
            assert_ne!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            if reply.status == StatusCode::NOT_FOUND {
                assert_ne!(reply.json()["error"], "no_route", "{method} {path}");
            }
        }
    }
    let unknown = api.get("/v2/nothing").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["error"], "no_route");
    server.shutdown().await;
}

#[tokio::test]
async fn reads_go_through_the_read_database_url() {
    let fixture = Fixture::new().await;
    // The "replica" is the same database here; what matters is that reads and health use that pool.
    let url = fixture.database_url.clone();
    let server = fixture.start(&["--read-database-url", &url]).await;
    let api = Api::new(server.http_addr, Some(TOKEN));
    api.register("alice", "a.example", 1, "op-a").await;
    assert_eq!(
        api.get("/v1/atsigns/alice").await.json()["host"],
        "a.example"
    );
    assert_eq!(
        api.get("/v1/atsigns").await.json()["items"][0]["atsign"],
        "@alice"
    );
    assert_eq!(api.get("/readyz").await.status, StatusCode::OK);
    let metrics = api.get("/metrics").await.text;
    assert!(
        metrics.contains(r#"op="get""#) && metrics.contains(r#"op="list""#),
        "{metrics}"
    );
    server.shutdown().await;
}
