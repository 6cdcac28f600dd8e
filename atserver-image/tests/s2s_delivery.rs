//! Delivery survives faults (acceptance 2): with @bob's server down, @alice's notifications stay
//! queued; @alice's server is killed mid-queue and resumes from its store; once @bob's server is
//! back every notification arrives exactly once, highest priority first, oldest first within a
//! priority.

#[path = "common/fleet.rs"]
mod fleet;

use std::time::Duration;

use fleet::{json, next_notification, poll_until, send, Fleet};

/// (id, priority) in the order they are sent.
const SENT: [(&str, &str); 5] = [
    ("low-1", "low"),
    ("high-1", "high"),
    ("medium-1", "medium"),
    ("low-2", "low"),
    ("high-2", "high"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_notifications_survive_restarts_and_arrive_in_priority_order() {
    let fleet = Fleet::start().await;
    let mut alice = fleet.start_node("@alice", "127.0.0.2").await;
    let mut bob = fleet.start_node("@bob", "127.0.0.3").await;

    // Warm-up: delivery works while both are up.
    let mut a = fleet.owner(&alice).await;
    assert_eq!(
        send(&mut a, "notify:id:warm-up:@bob:hello.app@alice:hi").await,
        "data:warm-up"
    );
    poll_until(&mut a, "notify:status:warm-up", "data:delivered").await;

    bob.kill().await;
    for (id, priority) in SENT {
        let reply = send(
            &mut a,
            &format!("notify:id:{id}:priority:{priority}:@bob:{id}.app@alice:value-{id}"),
        )
        .await;
        assert_eq!(reply, format!("data:{id}"));
    }
    // Attempts fail while @bob's server is down; everything stays queued.
    let retried = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let fetched = json(&send(&mut a, "notify:fetch:low-1").await);
            if fetched["retryCount"]
                .as_str()
                .and_then(|r| r.parse::<i64>().ok())
                >= Some(2)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(retried.is_ok(), "no delivery attempts were recorded");
    for (id, _) in SENT {
        assert_eq!(
            send(&mut a, &format!("notify:status:{id}")).await,
            "data:queued"
        );
    }

    // @alice's server dies mid-queue and comes back from its store.
    drop(a);
    alice.kill().await;
    fleet.spawn(&mut alice).await;
    fleet.register(&alice).await;
    let mut a = fleet.owner(&alice).await;
    for (id, _) in SENT {
        assert_eq!(
            send(&mut a, &format!("notify:status:{id}")).await,
            "data:queued"
        );
    }

    // @bob's server comes back; its owner watches before the directory points to it again.
    fleet.spawn(&mut bob).await;
    let mut monitor = fleet.monitor(&bob, ":0 app").await;
    fleet.register(&bob).await;
    let mut received = Vec::new();
    while received.len() < SENT.len() {
        let n = next_notification(&mut monitor).await;
        if n["id"] == "warm-up" {
            continue;
        }
        received.push(n["id"].as_str().unwrap().to_string());
    }
    assert_eq!(
        received,
        vec!["high-1", "high-2", "medium-1", "low-1", "low-2"],
        "priority order, oldest first within a priority"
    );
    for (id, _) in SENT {
        poll_until(&mut a, &format!("notify:status:{id}"), "data:delivered").await;
    }

    // Exactly once: @bob's server holds each notification one time, with its value.
    let mut b = fleet.owner(&bob).await;
    let listed = json(&send(&mut b, "notify:list").await);
    let mut ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        vec!["high-1", "high-2", "low-1", "low-2", "medium-1", "warm-up"]
    );
    let high = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "high-1")
        .unwrap();
    assert_eq!(high["value"], "value-high-1");
    assert_eq!(high["from"], "@alice");

    // Pooled connections to a peer that restarted are replaced on first use, not failed.
    send(&mut a, "update:@bob:shared.app@alice v").await;
    assert_eq!(
        send(&mut b, "lookup:bypassCache:true:shared.app@alice").await,
        "data:v"
    );
    drop(a);
    alice.kill().await;
    fleet.spawn(&mut alice).await;
    fleet.register(&alice).await;
    assert_eq!(
        send(&mut b, "lookup:bypassCache:true:shared.app@alice").await,
        "data:v",
        "the lookup after @alice's restart succeeds at once"
    );
    drop((b, monitor));
    let mut a = fleet.owner(&alice).await;
    assert_eq!(
        send(&mut a, "notify:id:before:@bob:x.app@alice:1").await,
        "data:before"
    );
    poll_until(&mut a, "notify:status:before", "data:delivered").await;
    bob.kill().await;
    fleet.spawn(&mut bob).await;
    fleet.register(&bob).await;
    assert_eq!(
        send(&mut a, "notify:id:after:@bob:x.app@alice:2").await,
        "data:after"
    );
    poll_until(&mut a, "notify:status:after", "data:delivered").await;
    let after = json(&send(&mut a, "notify:fetch:after").await);
    assert_eq!(
        after["retryCount"], "0",
        "delivered on a fresh connection: {after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeliverable_notifications_end_errored_or_expired() {
    let fleet = Fleet::start().await;
    let mut alice = fleet.node("@alice", "127.0.0.2");
    alice.args = vec!["--delivery-max-attempts".into(), "3".into()];
    fleet.spawn(&mut alice).await;
    fleet.register(&alice).await;
    let mut a = fleet.owner(&alice).await;
    // @nobody is not in the directory: every attempt fails, and the third is the last.
    assert_eq!(
        send(&mut a, "notify:id:lost:@nobody:x.app@alice:v").await,
        "data:lost"
    );
    poll_until(&mut a, "notify:status:lost", "data:errored").await;
    let fetched = json(&send(&mut a, "notify:fetch:lost").await);
    assert_eq!(fetched["retryCount"], "3");
    // A notification that outlives its ttln is reported expired, delivered or not.
    assert_eq!(
        send(&mut a, "notify:id:brief:ttln:1:@nobody:y.app@alice:v").await,
        "data:brief"
    );
    poll_until(&mut a, "notify:status:brief", "data:expired").await;
    // A public-scope notification names no atServer: nothing to deliver to.
    assert_eq!(
        send(&mut a, "notify:id:pub:public:p.app@alice:v").await,
        "data:pub"
    );
    poll_until(&mut a, "notify:status:pub", "data:errored").await;
}
