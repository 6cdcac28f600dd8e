//! The read path over TLS: reads answered from the record cache always agree with what was last
//! acknowledged, and buffered access-log entries are all counted by `stats`.

mod common;

use common::{data, json, TestServer};
use serde_json::Value;

fn not_found(reply: &str) -> bool {
    reply.starts_with("error:AT0015")
}

#[tokio::test]
async fn reads_follow_every_acknowledged_write() {
    let server = TestServer::start().await;
    let mut c = server.owner().await;
    let mut other = server.owner().await;
    // An absent key read first (a cached absence) appears as soon as it is written.
    assert!(not_found(&c.send("llookup:phone.app@alice").await));
    assert!(not_found(&other.send("llookup:phone.app@alice").await));
    data(&c.send("update:phone.app@alice 111").await);
    assert_eq!(other.send("llookup:phone.app@alice").await, "data:111");
    // Value and metadata changes are seen by the next read on any connection.
    data(&c.send("update:phone.app@alice 222").await);
    assert_eq!(other.send("llookup:phone.app@alice").await, "data:222");
    data(&c.send("update:meta:phone.app@alice:ttl:5000").await);
    let meta = json(&other.send("llookup:meta:phone.app@alice").await);
    assert_eq!(meta["ttl"], 5000);
    assert_eq!(meta["version"], 2);
    assert_eq!(other.send("llookup:phone.app@alice").await, "data:222");
    // A cached record still expires on time, before any sweep.
    server.clock.advance(5000);
    assert!(not_found(&other.send("llookup:phone.app@alice").await));
    // Deleted, then written again.
    data(&c.send("update:public:card.app@alice hello").await);
    let mut anon = server.connect().await;
    assert_eq!(anon.send("lookup:card.app@alice").await, "data:hello");
    data(&c.send("delete:public:card.app@alice").await);
    assert!(not_found(&anon.send("lookup:card.app@alice").await));
    assert!(not_found(&c.send("llookup:public:card.app@alice").await));
    data(&c.send("update:public:card.app@alice again").await);
    assert_eq!(anon.send("lookup:card.app@alice").await, "data:again");
    server.stop().await;
}

#[tokio::test]
async fn stats_count_every_lookup_answered() {
    let server = TestServer::start().await;
    let mut c = server.owner().await;
    data(&c.send("update:public:hot.app@alice 1").await);
    data(&c.send("update:public:cold.app@alice 2").await);
    // More lookups than one buffered batch, so some are written in batches and some on demand.
    for _ in 0..300 {
        assert_eq!(c.send("llookup:public:hot.app@alice").await, "data:1");
    }
    for _ in 0..2 {
        assert_eq!(c.send("llookup:public:cold.app@alice").await, "data:2");
    }
    let stats = json(&c.send("stats:6").await.replacen("data: ", "data:", 1));
    let top: Value = serde_json::from_str(stats[0]["value"].as_str().unwrap()).unwrap();
    assert_eq!(top["public:hot.app@alice"], 300, "{top}");
    assert_eq!(top["public:cold.app@alice"], 2, "{top}");
    let stats = json(&c.send("stats:5").await.replacen("data: ", "data:", 1));
    let top: Value = serde_json::from_str(stats[0]["value"].as_str().unwrap()).unwrap();
    assert!(top["@alice"].as_i64().unwrap() >= 302, "{top}");
    server.stop().await;
}
