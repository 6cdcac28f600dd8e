//! TTL, TTB, TTR, CCD, notification and challenge lifetimes, and idle reaping, with the injected
//! manual clock (no sleeps of seconds).

mod common;

use std::time::Duration;

use common::{json, TestServer, SECRET};
use serde_json::Value;

fn keys_of(reply: &str) -> Vec<String> {
    serde_json::from_value(json(reply)).unwrap()
}

#[tokio::test]
async fn ttl_expires_on_next_read_and_sweep_commits_delete() {
    let server = TestServer::start().await;
    let mut c = server.owner().await;
    c.send("update:ttl:1000:otp.app@alice 1234").await;
    c.send("update:ttl:1000:public:pub.app@alice 1").await;
    let meta = json(&c.send("llookup:meta:otp.app@alice").await);
    assert_eq!(meta["ttl"], 1000);
    assert_eq!(meta["expiresAt"], "2024-10-24 01:35:03.123Z");
    server.clock.advance(999);
    assert_eq!(c.send("llookup:otp.app@alice").await, "data:1234");
    server.clock.advance(1);
    // Gone on the next read, before any sweep: llookup, lookup and scan agree.
    assert!(c
        .send("llookup:otp.app@alice")
        .await
        .starts_with("error:AT0015"));
    let mut anon = server.connect().await;
    assert!(anon
        .send("lookup:pub.app@alice")
        .await
        .starts_with("error:AT0015"));
    assert!(!keys_of(&c.send("scan").await)
        .iter()
        .any(|k| k.contains("otp.app")));

    let removed = server.handle().sweep_now().await.unwrap();
    assert_eq!(removed, 2);
    let entries = json(&c.send("sync:from:-1:limit:25:otp").await);
    let e = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["atKey"] == "otp.app@alice")
        .unwrap();
    assert_eq!(e["operation"], "-");
    assert!(e["value"].is_null());
    server.stop().await;
}

#[tokio::test]
async fn periodic_sweep_runs_by_itself() {
    let server = TestServer::start_with(|c| c.sweep_interval = Duration::from_millis(50)).await;
    let mut c = server.owner().await;
    let before = c.send("update:ttl:10:gone.app@alice x").await;
    server.clock.advance(11);
    let before = before.trim_start_matches("data:").to_string();
    let mut swept = false;
    for _ in 0..400 {
        let last = c.send("stats:3").await;
        let parsed: Value = serde_json::from_str(last.trim_start_matches("data: ")).unwrap();
        if parsed[0]["value"] != before.as_str() {
            swept = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(swept, "the periodic sweep did not run");
    let entries = json(&c.send("sync:from:-1:limit:25:gone").await);
    let gone = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["atKey"] == "gone.app@alice")
        .unwrap();
    assert_eq!(gone["operation"], "-", "{entries}");
    server.stop().await;
}

#[tokio::test]
async fn ttb_unborn_values_read_as_null_until_birth() {
    let server = TestServer::start().await;
    let mut c = server.owner().await;
    c.send("update:ttb:500:ttl:1000:later.app@alice surprise")
        .await;
    c.send("update:ttb:500:public:later.app@alice surprise")
        .await;
    assert_eq!(c.send("llookup:later.app@alice").await, "data:null");
    let mut anon = server.connect().await;
    assert_eq!(anon.send("lookup:later.app@alice").await, "data:null");
    assert!(!keys_of(&c.send("scan").await)
        .iter()
        .any(|k| k.contains("later")));
    // Sync still ships unborn records.
    let entries = json(&c.send("sync:from:-1:limit:25:later").await);
    let later = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["atKey"].as_str().unwrap().contains("later"));
    assert_eq!(later.count(), 2);
    server.clock.advance(500);
    assert_eq!(c.send("llookup:later.app@alice").await, "data:surprise");
    assert_eq!(anon.send("lookup:later.app@alice").await, "data:surprise");
    assert!(keys_of(&c.send("scan").await).contains(&"later.app@alice".to_string()));
    // ttl counts from birth: alive until 500 + 1000.
    server.clock.advance(999);
    assert_eq!(c.send("llookup:later.app@alice").await, "data:surprise");
    server.clock.advance(1);
    assert!(c
        .send("llookup:later.app@alice")
        .await
        .starts_with("error:AT0015"));
    server.stop().await;
}

#[tokio::test]
async fn ttl_zero_clears_and_plain_updates_keep_the_expiry() {
    let server = TestServer::start().await;
    let mut c = server.owner().await;
    c.send("update:ttl:1000:k.app@alice 1").await;
    server.clock.advance(600);
    // An update that does not mention ttl keeps the original expiry (3.16.3 behaviour).
    c.send("update:k.app@alice 2").await;
    server.clock.advance(400);
    assert!(c
        .send("llookup:k.app@alice")
        .await
        .starts_with("error:AT0015"));
    c.send("update:ttl:1000:k.app@alice 3").await;
    c.send("update:ttl:0:k.app@alice 4").await;
    server.clock.advance(10_000);
    assert_eq!(c.send("llookup:k.app@alice").await, "data:4");
    assert!(json(&c.send("llookup:meta:k.app@alice").await)
        .get("expiresAt")
        .is_none());
    server.stop().await;
}

#[tokio::test]
async fn ttr_and_ccd_metadata_rules() {
    let server = TestServer::start().await;
    let mut c = server.owner().await;
    // ttr is in seconds; ccd defaults to false when a ttr is set.
    c.send("update:ttr:60:@bob:a.app@alice 1").await;
    let m = json(&c.send("llookup:meta:@bob:a.app@alice").await);
    assert_eq!(m["ttr"], 60);
    assert_eq!(m["ccd"], false);
    assert_eq!(m["refreshAt"], "2024-10-24 01:36:02.123Z");
    // ccd without ttr is dropped; ttr:-1 means cache forever (no refreshAt).
    c.send("update:ccd:true:@bob:b.app@alice 1").await;
    assert!(json(&c.send("llookup:meta:@bob:b.app@alice").await)
        .get("ccd")
        .is_none());
    c.send("update:ttr:-1:ccd:true:@bob:c.app@alice 1").await;
    let m = json(&c.send("llookup:meta:@bob:c.app@alice").await);
    assert_eq!(
        (m["ttr"].clone(), m["ccd"].clone()),
        (Value::from(-1), Value::from(true))
    );
    assert!(m.get("refreshAt").is_none());
    // ccd given later on an existing key uses the stored ttr; ttr:0 = not cacheable.
    c.send("update:meta:@bob:a.app@alice:ccd:true").await;
    let m = json(&c.send("llookup:meta:@bob:a.app@alice").await);
    assert_eq!(
        (m["ttr"].clone(), m["ccd"].clone()),
        (Value::from(60), Value::from(true))
    );
    c.send("update:ttr:0:@bob:a.app@alice 1").await;
    let m = json(&c.send("llookup:meta:@bob:a.app@alice").await);
    assert!(m.get("ttr").is_none() && m.get("ccd").is_none());
    // The update of a shared key queued an auto-notification carrying the metadata.
    let s11 = c.send("stats:11").await;
    assert!(s11.contains(r#"\"queued\":"#), "{s11}");
    server.stop().await;
}

#[tokio::test]
async fn notifications_and_challenges_expire() {
    let server = TestServer::start().await;
    let mut c = server.owner().await;
    let id = c.send("notify:ttln:1000:@alice:n.app@alice:v").await;
    let id = id.trim_start_matches("data:").to_string();
    assert_eq!(
        c.send(&format!("notify:status:{id}")).await,
        "data:delivered"
    );
    server.clock.advance(1000);
    assert_eq!(c.send(&format!("notify:status:{id}")).await, "data:expired");
    assert_eq!(c.send("notify:list").await, "data:null");
    // A from: challenge is valid for 60 s.
    let mut d = server.connect().await;
    let challenge = d.send("from:@alice").await;
    server.clock.advance(60_001);
    let digest = atserver::crypto::cram_digest(SECRET, challenge.trim_start_matches("data:"));
    assert!(d
        .send(&format!("cram:{digest}"))
        .await
        .starts_with("error:AT0401"));
    server.stop().await;
}

#[tokio::test]
async fn idle_connections_are_reaped() {
    let server = TestServer::start_with(|c| {
        c.limits.idle_unauthenticated = Duration::from_secs(600);
        c.limits.idle_authenticated = Duration::from_secs(3600);
    })
    .await;
    let mut anon = server.connect().await;
    let mut owner = server.owner().await;
    server.clock.advance(601_000);
    assert!(
        anon.closed().await,
        "idle anonymous connection closed by the reaper"
    );
    assert_eq!(owner.send("noop:0").await, "data:ok");
    server.clock.advance(3_600_001);
    assert!(owner.closed().await);
    server.stop().await;
}

#[tokio::test]
async fn cached_copies_are_served_until_their_ttr_runs_out() {
    use atserver::keystore;
    use atserver::metadata::MetaUpdate;
    let server = TestServer::start().await;
    // Seed cached copies as the delivery engine of the server-to-server issue will write them.
    let shared = server.handle().shared().clone();
    let fresh = MetaUpdate {
        ttr: Some(60),
        ccd: Some(true),
        ..Default::default()
    };
    keystore::put(
        &shared,
        "cached:@alice:phone.wavi@bob",
        Some("cipher".into()),
        &fresh,
        false,
    )
    .await
    .unwrap();
    let forever = MetaUpdate {
        ttr: Some(-1),
        ..Default::default()
    };
    keystore::put(
        &shared,
        "cached:@alice:email.wavi@bob",
        Some("kept".into()),
        &forever,
        false,
    )
    .await
    .unwrap();

    let mut c = server.owner().await;
    assert_eq!(c.send("lookup:phone.wavi@bob").await, "data:cipher");
    let all = json(&c.send("lookup:all:phone.wavi@bob").await);
    assert_eq!(
        all["key"], "cached:@alice:phone.wavi@bob",
        "a cache hit names the cached key"
    );
    assert_eq!(all["metaData"]["ccd"], true);
    server.clock.advance(60_001);
    // Stale: a remote lookup is needed, and this server has no atDirectory to find @bob.
    assert!(c
        .send("lookup:phone.wavi@bob")
        .await
        .starts_with("error:AT0007"));
    assert_eq!(c.send("lookup:email.wavi@bob").await, "data:kept");
    // Owners may read their cached copies directly, but never write them.
    assert_eq!(
        c.send("llookup:cached:@alice:phone.wavi@bob").await,
        "data:cipher"
    );
    assert!(c
        .send("update:cached:@alice:phone.wavi@bob x")
        .await
        .starts_with("error:"));
    server.stop().await;
}
