//! The `latest` notification strategy over TLS: of one notifier's queued notifications to a
//! recipient only the newest `latestN` still go; the older ones are superseded (`expired`),
//! while `all` notifications, the default, are kept.

mod common;

use std::time::Duration;

use common::TestServer;

async fn status_becomes(c: &mut common::Client, id: &str, want: &str) {
    let cmd = format!("notify:status:{id}");
    let mut last = String::new();
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            last = c.send(&cmd).await;
            if last == format!("data:{want}") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "{id} never became {want}; last {last}");
}

#[tokio::test]
async fn latest_keeps_the_newest_n_per_notifier() {
    // @bob cannot be reached (no directory), so everything stays queued unless superseded.
    let server = TestServer::start_with(|c| {
        c.delivery.max_attempts = i64::MAX;
        c.delivery.quarantine = Duration::from_millis(50);
        c.delivery.initial_backoff = Duration::from_millis(50);
        c.delivery.max_backoff = Duration::from_millis(100);
        c.delivery.poll_interval = Duration::from_millis(50);
    })
    .await;
    let mut c = server.owner().await;
    for i in 1..=4 {
        server.clock.advance(1000);
        let cmd = format!(
            "notify:id:gps{i}:update:strategy:latest:latestN:2:notifier:gps:@bob:loc.wavi@alice:v{i}"
        );
        assert_eq!(c.send(&cmd).await, format!("data:gps{i}"));
        let all = format!("notify:id:all{i}:update:notifier:gps:@bob:note.wavi@alice:n{i}");
        assert_eq!(c.send(&all).await, format!("data:all{i}"));
    }
    server.clock.advance(1000);
    let other = "notify:id:chat1:update:strategy:latest:notifier:chat:@bob:msg.wavi@alice:m";
    assert_eq!(c.send(other).await, "data:chat1");

    status_becomes(&mut c, "gps1", "expired").await;
    status_becomes(&mut c, "gps2", "expired").await;
    for id in ["gps3", "gps4", "chat1", "all1", "all2", "all3", "all4"] {
        assert_eq!(
            c.send(&format!("notify:status:{id}")).await,
            "data:queued",
            "{id}"
        );
    }
    // strategy:latest without a notifier is refused, as in the reference.
    assert!(c
        .send("notify:strategy:latest:@bob:x.wavi@alice:v")
        .await
        .starts_with("error:AT0003"));
    server.stop().await;
}
