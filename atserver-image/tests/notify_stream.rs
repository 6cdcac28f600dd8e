//! A stream of notifications to one peer: those queued while @alice's server is still delivering
//! the previous ones are taken by the same delivery task (no wait for a new pass), every one
//! reaches @bob's monitor once, and each ends `delivered` at @alice.

#[path = "common/fleet.rs"]
mod fleet;

use std::collections::BTreeSet;

use fleet::{next_notification, poll_until, send, Fleet};

const COUNT: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_notifications_all_arrive_once_and_end_delivered() {
    let fleet = Fleet::start().await;
    let alice = fleet.start_node("@alice", "127.0.0.2").await;
    let bob = fleet.start_node("@bob", "127.0.0.3").await;
    let mut monitor = fleet.monitor(&bob, "").await;
    let mut a = fleet.owner(&alice).await;

    // Sent without waiting for deliveries, so most arrive while @bob's task is busy.
    let ids: Vec<String> = (0..COUNT).map(|i| format!("stream-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let reply = send(&mut a, &format!("notify:id:{id}:@bob:s{i}.app@alice:v{i}")).await;
        assert_eq!(reply, format!("data:{id}"));
    }

    let mut seen = BTreeSet::new();
    while seen.len() < COUNT {
        let n = next_notification(&mut monitor).await;
        let id = n["id"].as_str().expect("id").to_string();
        assert!(ids.contains(&id), "unexpected notification {n}");
        assert!(seen.insert(id.clone()), "{id} arrived twice");
    }
    for id in &ids {
        poll_until(&mut a, &format!("notify:status:{id}"), "data:delivered").await;
    }
}
