//! Cache upkeep between atServers: the periodic refresh job re-fetches cached copies past their
//! refreshAt; a changed public key of a peer retires our shared key with it (§7.4); the
//! server-to-server metrics are exported.

#[path = "common/fleet.rs"]
mod fleet;

use fleet::{code, json, metrics, next_notification, send, Fleet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_job_and_public_key_change() {
    let fleet = Fleet::start().await;
    let alice = fleet.start_node("@alice", "127.0.0.2").await;
    let mut bob = fleet.node("@bob", "127.0.0.3");
    bob.args = vec!["--cache-refresh-secs".into(), "1".into()];
    fleet.spawn(&mut bob).await;
    fleet.register(&bob).await;
    let mut a = fleet.owner(&alice).await;
    let mut b = fleet.owner(&bob).await;

    // @alice publishes an encryption public key; @bob's server caches it with ttr -1 when it
    // first connects to @alice's.
    send(&mut a, "update:public:publickey@alice KEY-ONE").await;
    send(&mut a, "update:ttr:1:@bob:pulse.app@alice beat").await;
    let mut monitor = fleet.monitor(&bob, " pulse").await;
    assert_eq!(
        send(&mut b, "lookup:bypassCache:true:pulse.app@alice").await,
        "data:beat"
    );
    let meta = json(&send(&mut b, "llookup:meta:cached:public:publickey@alice").await);
    assert_eq!(meta["ttr"], -1);
    assert_eq!(
        send(&mut b, "llookup:cached:public:publickey@alice").await,
        "data:KEY-ONE"
    );

    // The refresh job fetches the 1-second-ttr copy again by itself: its refreshAt moves on.
    let first =
        json(&send(&mut b, "llookup:meta:cached:@bob:pulse.app@alice").await)["refreshAt"].clone();
    let mut moved = false;
    for _ in 0..200 {
        let now = json(&send(&mut b, "llookup:meta:cached:@bob:pulse.app@alice").await)
            ["refreshAt"]
            .clone();
        if now != first {
            moved = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(moved, "the refresh job never refreshed the cached copy");
    // Changes still flow by notification too.
    send(&mut a, "update:ttr:1:@bob:pulse.app@alice beat2").await;
    loop {
        let n = next_notification(&mut monitor).await;
        if n["value"] == "beat2" {
            break;
        }
    }

    // @bob keeps a shared key for @alice; @alice's key changes (a reset): the next fetch of
    // her public key retires it as shared_key.alice.until.<ms>@bob.
    send(&mut b, "update:shared_key.alice@bob ENCRYPTED-AES").await;
    send(&mut a, "update:public:publickey@alice KEY-TWO").await;
    assert_eq!(
        send(&mut b, "plookup:bypassCache:true:publickey@alice").await,
        "data:KEY-TWO"
    );
    assert_eq!(
        send(&mut b, "llookup:cached:public:publickey@alice").await,
        "data:KEY-TWO"
    );
    assert_eq!(
        code(&send(&mut b, "llookup:shared_key.alice@bob").await),
        "AT0015"
    );
    let keys = json(&send(&mut b, "scan shared_key").await);
    let retired: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k.as_str())
        .filter(|k| k.starts_with("shared_key.alice.until."))
        .collect();
    assert_eq!(retired.len(), 1, "{keys}");
    assert_eq!(
        send(&mut b, &format!("llookup:{}", retired[0])).await,
        "data:ENCRYPTED-AES"
    );
    // The same key again changes nothing.
    send(&mut b, "plookup:bypassCache:true:publickey@alice").await;
    let again = json(&send(&mut b, "scan shared_key").await);
    assert_eq!(again, keys);

    // Metrics of both sides.
    let bob_metrics = metrics(&bob).await;
    for line in [
        "atserver_pol_handshakes_total{direction=\"outbound\",result=\"ok\"}",
        "atserver_peer_outbound_connections_total",
        "atserver_cache_hits_total",
        "atserver_cache_refreshes_total{result=\"stored\"}",
    ] {
        assert!(bob_metrics.contains(line), "{line} missing:\n{bob_metrics}");
    }
    let alice_metrics = metrics(&alice).await;
    for line in [
        "atserver_pol_handshakes_total{direction=\"inbound\",result=\"ok\"}",
        "atserver_notification_deliveries_total{result=\"delivered\"}",
        "atserver_notification_delivery_seconds_bucket",
    ] {
        assert!(
            alice_metrics.contains(line),
            "{line} missing:\n{alice_metrics}"
        );
    }
}
