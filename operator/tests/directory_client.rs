//! The directory client against a small in-test HTTP server that implements the registration
//! API contract (bearer token, owner fencing, error bodies).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use atfleet_operator::directory::{Deregistered, DirectoryClient, DirectoryError};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

const TOKEN: &str = "s3cret";

#[derive(Default)]
struct Store {
    records: HashMap<String, (String, u16, String)>,
}

type Shared = Arc<Mutex<Store>>;

#[derive(Deserialize)]
struct Body {
    host: String,
    port: u16,
    owner: String,
}

#[derive(Deserialize)]
struct Params {
    owner: Option<String>,
    force: Option<bool>,
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

fn error(status: StatusCode, code: &str, extra: serde_json::Value) -> Response {
    let mut body = json!({ "error": code, "message": format!("{code} happened") });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    (status, Json(body)).into_response()
}

fn record(atsign: &str, r: &(String, u16, String)) -> serde_json::Value {
    json!({ "atsign": atsign, "host": r.0, "port": r.1, "owner": r.2,
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z" })
}

async fn get_one(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(atsign): Path<String>,
) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", json!({}));
    }
    let store = s.lock().expect("lock");
    match store.records.get(&atsign) {
        Some(r) => Json(record(&atsign, r)).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", json!({})),
    }
}

async fn put_one(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(atsign): Path<String>,
    Query(q): Query<Params>,
    Json(b): Json<Body>,
) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", json!({}));
    }
    let mut store = s.lock().expect("lock");
    if let Some(existing) = store.records.get(&atsign) {
        if existing.2 != b.owner && q.force != Some(true) {
            return error(
                StatusCode::CONFLICT,
                "owner_conflict",
                json!({ "currentOwner": existing.2 }),
            );
        }
    }
    let created = !store.records.contains_key(&atsign);
    let r = (b.host, b.port, b.owner);
    let body = record(&atsign, &r);
    store.records.insert(atsign, r);
    (
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(body),
    )
        .into_response()
}

async fn delete_one(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(atsign): Path<String>,
    Query(q): Query<Params>,
) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", json!({}));
    }
    let mut store = s.lock().expect("lock");
    match store.records.get(&atsign) {
        None => error(StatusCode::NOT_FOUND, "not_found", json!({})),
        Some(r) if Some(&r.2) != q.owner.as_ref() && q.force != Some(true) => error(
            StatusCode::CONFLICT,
            "owner_conflict",
            json!({ "currentOwner": r.2 }),
        ),
        Some(_) => {
            store.records.remove(&atsign);
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

async fn start() -> (String, Shared) {
    let shared: Shared = Arc::default();
    let app = Router::new()
        .route(
            "/v1/atsigns/{atsign}",
            get(get_one).put(put_one).delete(delete_one),
        )
        .route(
            "/broken/v1/atsigns/{atsign}",
            get(|| async { (StatusCode::BAD_GATEWAY, "upstream down") }),
        )
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), shared)
}

#[tokio::test]
async fn register_get_and_deregister_round_trip() {
    let (url, store) = start().await;
    let client = DirectoryClient::new(&url, Some(TOKEN.into()), None).expect("client");
    assert_eq!(client.get("@alice").await, Ok(None));
    let reg = client
        .register("@alice", "alice.example", 6464, "atfleet/ns/alice", false)
        .await
        .expect("register");
    assert_eq!(
        (reg.atsign.as_str(), reg.host.as_str(), reg.port),
        ("@alice", "alice.example", 6464)
    );
    assert_eq!(
        store
            .lock()
            .expect("lock")
            .records
            .get("@alice")
            .map(|r| r.2.clone()),
        Some("atfleet/ns/alice".into())
    );
    // Re-registering at a new address by the same owner moves it.
    client
        .register("@alice", "alice2.example", 7000, "atfleet/ns/alice", false)
        .await
        .expect("move");
    let got = client.get("@alice").await.expect("get").expect("present");
    assert_eq!((got.host.as_str(), got.port), ("alice2.example", 7000));
    assert_eq!(
        client.deregister("@alice", "atfleet/ns/alice", false).await,
        Ok(Deregistered::Removed)
    );
    assert_eq!(
        client.deregister("@alice", "atfleet/ns/alice", false).await,
        Ok(Deregistered::NotRegistered)
    );
}

#[tokio::test]
async fn owner_fencing_surfaces_as_conflict() {
    let (url, _store) = start().await;
    let client = DirectoryClient::new(&url, Some(TOKEN.into()), None).expect("client");
    client
        .register("@bob", "h", 1, "atfleet/a/bob", false)
        .await
        .expect("register");
    match client
        .register("@bob", "h2", 2, "atfleet/b/bob", false)
        .await
    {
        Err(DirectoryError::Conflict { current_owner, .. }) => {
            assert_eq!(current_owner.as_deref(), Some("atfleet/a/bob"))
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(
        client.deregister("@bob", "atfleet/b/bob", false).await,
        Err(DirectoryError::Conflict { .. })
    ));
    // force takes it over.
    client
        .register("@bob", "h2", 2, "atfleet/b/bob", true)
        .await
        .expect("forced");
}

#[tokio::test]
async fn emoji_atsigns_survive_the_path() {
    let (url, store) = start().await;
    let client = DirectoryClient::new(&url, Some(TOKEN.into()), None).expect("client");
    client
        .register("@alice🛠", "h", 1, "o", false)
        .await
        .expect("register");
    assert!(store.lock().expect("lock").records.contains_key("@alice🛠"));
    assert_eq!(
        client.get("@alice🛠").await.expect("get").map(|r| r.atsign),
        Some("@alice🛠".into())
    );
}

#[tokio::test]
async fn bad_token_is_unauthorized() {
    let (url, _store) = start().await;
    let client = DirectoryClient::new(&url, Some("wrong".into()), None).expect("client");
    assert_eq!(
        client.get("@alice").await,
        Err(DirectoryError::Unauthorized)
    );
}

#[tokio::test]
async fn server_errors_and_refused_connections_are_unavailable() {
    let (url, _store) = start().await;
    let client =
        DirectoryClient::new(&format!("{url}/broken"), Some(TOKEN.into()), None).expect("client");
    assert!(matches!(
        client.get("@alice").await,
        Err(DirectoryError::Unavailable(_))
    ));
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let client = DirectoryClient::new(&dead, None, None).expect("client");
    let err = client
        .register("@alice", "h", 1, "o", false)
        .await
        .expect_err("refused");
    assert_eq!(err.reason(), "DirectoryUnavailable");
}
