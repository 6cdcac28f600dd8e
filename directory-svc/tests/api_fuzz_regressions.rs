//! Requests schemathesis (`fuzz/api-fuzz`) found where `openapi.json` promised more than the server
//! accepts, or less than it accepts. The document now states each rule (atSign and host patterns,
//! a non-blank owner); these tests pin the server's side of every case, so a change to either
//! shows up in `make test` and not only in the next fuzz run.

mod common;

use common::http::Api;
use common::{Fixture, TOKEN};
use hyper::StatusCode;
use serde_json::{json, Value};

fn body(host: &str, owner: &str) -> Value {
    json!({"host": host, "port": 6464, "owner": owner})
}

fn error_code(reply: &common::http::Reply) -> String {
    reply.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn requests_schemathesis_found() {
    let fixture = Fixture::new().await;
    let server = fixture.start(&[]).await;
    let api = Api::new(server.http_addr, Some(TOKEN));

    // An empty `after` is not an atSign (the document now says minimum one non-dot character).
    let r = api.get("/v1/atsigns?after=").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(error_code(&r), "invalid_atsign");

    // Reserved characters are refused in the path (the document's pattern excludes them).
    let r = api
        .get("/v1/atsigns/%24%3F%C2%94%C2%B2%C2%AF%144%C2%A7l%C3%B0")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(error_code(&r), "invalid_atsign");

    // A host must be a DNS name or IPv4 address in ASCII (the document's host pattern).
    let r = api
        .put(
            "/v1/atsigns/@alice",
            body("\u{cf}p5\u{d5}\u{99}\u{bb}", "op"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(error_code(&r), "invalid_host");

    // 55 characters after the `@` are an atSign; the `@` does not count (the document had a
    // maxLength that counted it).
    let longest = format!("@{}", "0".repeat(55));
    let r = api
        .put(
            &format!("/v1/atsigns/{}?force=true", longest.replace('@', "%40")),
            body("alice.fleet.example", "op"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = api.get(&format!("/v1/atsigns/{longest}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = api
        .get(&format!("/v1/atsigns?after={}", "0".repeat(55)))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = api.get(&format!("/v1/atsigns/@{}", "0".repeat(56))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);

    // DELETE needs `owner` unless `force=true`, which OpenAPI 3.0 cannot state; the 400 is right
    // and fuzz/api/schemathesis.toml exempts this operation from positive_data_acceptance.
    let r = api.delete("/v1/atsigns/%40alice?force=false").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(error_code(&r), "invalid_query");

    // A blank owner is refused (the document now says minLength 1, no whitespace).
    let r = api
        .put("/v1/atsigns/@bob", body("bob.fleet.example", " "))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(error_code(&r), "invalid_owner");
}
