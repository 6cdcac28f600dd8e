//! Server-to-server through the protocol only (acceptance 1): three atserver processes and the
//! real atDirectory on Postgres. @alice shares with @bob; @bob's client reads through @bob's
//! server (remote fetch, then cache); updates and deletes reach @bob's monitor and cache;
//! plookup caches public data; `scan:@alice` lists what @alice shared with @bob.

#[path = "common/fleet.rs"]
mod fleet;

use fleet::{code, json, next_notification, poll_until, send, Fleet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_shares_with_bob_through_their_servers() {
    let fleet = Fleet::start().await;
    let alice = fleet.start_node("@alice", "127.0.0.2").await;
    let bob = fleet.start_node("@bob", "127.0.0.3").await;
    let _carol = fleet.start_node("@carol", "127.0.0.4").await;
    let mut a = fleet.owner(&alice).await;
    let mut b = fleet.owner(&bob).await;
    let mut monitor = fleet.monitor(&bob, " phone").await;

    // Share: the update notification carries value and metadata to @bob's server, which caches.
    let put = send(
        &mut a,
        "update:ttr:3600:ccd:true:isEncrypted:true:ivNonce:AAAAAAAAAAAAAAAAAAAAAA==:@bob:phone.wavi@alice v1",
    )
    .await;
    assert!(put.starts_with("data:"), "{put}");
    let n = next_notification(&mut monitor).await;
    assert_eq!(n["from"], "@alice");
    assert_eq!(n["to"], "@bob");
    assert_eq!(n["key"], "@bob:phone.wavi@alice");
    assert_eq!(n["value"], "v1");
    assert_eq!(n["operation"], "update");
    assert_eq!(
        send(&mut b, "llookup:cached:@bob:phone.wavi@alice").await,
        "data:v1"
    );

    // Without the cached copy @bob's server fetches from @alice's over pol, then caches again.
    assert!(send(&mut b, "delete:cached:@bob:phone.wavi@alice")
        .await
        .starts_with("data:"));
    let remote = json(&send(&mut b, "lookup:all:phone.wavi@alice").await);
    assert_eq!(remote["key"], "@bob:phone.wavi@alice", "a remote fetch");
    assert_eq!(remote["data"], "v1");
    assert_eq!(remote["metaData"]["ttr"], 3600);
    assert_eq!(remote["metaData"]["ivNonce"], "AAAAAAAAAAAAAAAAAAAAAA==");
    // The owner's metadata as the owner's server has it, not a local rebuild (README,
    // compatibility: a remote lookup:all returns what the owner sent).
    let own = json(&send(&mut a, "llookup:all:@bob:phone.wavi@alice").await);
    assert_eq!(
        remote["metaData"]["createdAt"],
        own["metaData"]["createdAt"]
    );
    assert_eq!(
        remote["metaData"]["updatedAt"],
        own["metaData"]["updatedAt"]
    );
    assert_eq!(remote["metaData"]["version"], own["metaData"]["version"]);
    assert_eq!(remote["metaData"]["createdBy"], "@alice");
    let cached = json(&send(&mut b, "lookup:all:phone.wavi@alice").await);
    assert_eq!(cached["key"], "cached:@bob:phone.wavi@alice", "a cache hit");
    assert_eq!(cached["data"], "v1");
    assert_eq!(send(&mut b, "lookup:phone.wavi@alice").await, "data:v1");
    // bypassCache goes to @alice's server even with a fresh copy.
    let bypass = json(&send(&mut b, "lookup:bypassCache:true:all:phone.wavi@alice").await);
    assert_eq!(bypass["key"], "@bob:phone.wavi@alice");
    // Keys @alice did not share with @bob are not found there.
    assert_eq!(
        code(&send(&mut b, "lookup:secret.wavi@alice").await),
        "AT0015"
    );

    // Update: @bob's monitor hears it and the cached copy changes.
    send(
        &mut a,
        "update:ttr:3600:ccd:true:isEncrypted:true:@bob:phone.wavi@alice v2",
    )
    .await;
    let n = next_notification(&mut monitor).await;
    assert_eq!(
        (n["key"].as_str(), n["value"].as_str()),
        (Some("@bob:phone.wavi@alice"), Some("v2"))
    );
    assert_eq!(
        send(&mut b, "llookup:cached:@bob:phone.wavi@alice").await,
        "data:v2"
    );
    assert_eq!(send(&mut b, "lookup:phone.wavi@alice").await, "data:v2");

    // Delete with ccd true: the cached copy disappears.
    send(&mut a, "delete:@bob:phone.wavi@alice").await;
    let n = next_notification(&mut monitor).await;
    assert_eq!(n["operation"], "delete");
    assert_eq!(n["key"], "@bob:phone.wavi@alice");
    assert_eq!(
        code(&send(&mut b, "llookup:cached:@bob:phone.wavi@alice").await),
        "AT0015"
    );
    assert_eq!(
        code(&send(&mut b, "lookup:phone.wavi@alice").await),
        "AT0015"
    );

    // plookup of public data: fetched anonymously, then served from cache.
    send(&mut a, "update:ttr:600:public:location.wavi@alice Lagos").await;
    let first = json(&send(&mut b, "plookup:all:location.wavi@alice").await);
    assert_eq!(first["key"], "public:location.wavi@alice");
    assert_eq!(first["data"], "Lagos");
    let second = json(&send(&mut b, "plookup:all:location.wavi@alice").await);
    assert_eq!(second["key"], "cached:public:location.wavi@alice");
    assert_eq!(
        send(&mut b, "plookup:location.wavi@alice").await,
        "data:Lagos"
    );
    assert_eq!(
        code(&send(&mut b, "plookup:nothing.wavi@alice").await),
        "AT0015"
    );

    // scan:@alice lists what @alice shares with @bob (and nothing shared with others).
    send(&mut a, "update:@bob:email.wavi@alice bob@example.com").await;
    send(&mut a, "update:@carol:email.wavi@alice carol@example.com").await;
    let keys = json(&send(&mut b, "scan:@alice").await);
    let keys: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k.as_str())
        .collect();
    assert!(keys.contains(&"email.wavi@alice"), "{keys:?}");
    assert!(!keys.iter().any(|k| k.contains("carol")), "{keys:?}");
    let filtered = json(&send(&mut b, "scan:@alice phone").await);
    assert_eq!(filtered, serde_json::json!([]));

    // The other direction works the same way.
    send(&mut b, "update:ttr:60:@alice:reply.wavi@bob pong").await;
    poll_until(&mut a, "llookup:cached:@alice:reply.wavi@bob", "data:pong").await;
}
