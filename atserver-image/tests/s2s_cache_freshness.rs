//! A recipient never reads a value older than its owner's latest (issue 17, item 1): @carol
//! shares with @bob through both atServers; whatever the order of updates with and without ttr,
//! deletes with and without ccd, ttr expiry and restarts of either side, @bob's `lookup` of
//! @carol's key answers @carol's latest value once the notification of it has arrived.

#[path = "common/fleet.rs"]
mod fleet;

use at_protocol::client::{AtConnection, MonitorConnection};
use fleet::{code, next_notification, poll_until, send, Fleet};

/// Waits until @bob's monitor has the notification for `key` with `operation` (and `value`,
/// for updates): @bob's server keeps its cache before it pushes to monitors.
async fn arrived(monitor: &mut MonitorConnection, key: &str, operation: &str, value: Option<&str>) {
    loop {
        let n = next_notification(monitor).await;
        if n["key"] == key && n["operation"] == operation && value.is_none_or(|v| n["value"] == v) {
            return;
        }
    }
}

/// Sends `cmd` until it fails with `expected` (a bounded wait on a condition).
async fn poll_code(c: &mut AtConnection, cmd: &str, expected: &str) {
    let waited = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            let reply = send(c, cmd).await;
            if reply.starts_with("error:") && code(&reply) == expected {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "`{cmd}` never failed with {expected}");
}

async fn write(c: &mut AtConnection, cmd: &str) {
    let reply = send(c, cmd).await;
    assert!(reply.starts_with("data:"), "`{cmd}`: {reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipient_reads_the_owners_latest_value() {
    let fleet = Fleet::start().await;
    let mut carol = fleet.start_node("@carol", "127.0.0.2").await;
    let mut bob = fleet.start_node("@bob", "127.0.0.3").await;
    let mut c = fleet.owner(&carol).await;
    let mut b = fleet.owner(&bob).await;
    let mut monitor = fleet.monitor(&bob, " app").await;

    // The sequence: shared with ttr (cached), deleted without ccd (the copy is kept, as
    // documented), shared again without ttr: @bob must read the new value, not the kept copy.
    let key = "@bob:cup.app@carol";
    write(&mut c, "update:ttr:86400:@bob:cup.app@carol tea").await;
    arrived(&mut monitor, key, "update", Some("tea")).await;
    assert_eq!(send(&mut b, "lookup:cup.app@carol").await, "data:tea");
    assert_eq!(
        send(&mut b, "llookup:cached:@bob:cup.app@carol").await,
        "data:tea"
    );
    write(&mut c, "delete:@bob:cup.app@carol").await;
    arrived(&mut monitor, key, "delete", None).await;
    assert_eq!(
        send(&mut b, "lookup:cup.app@carol").await,
        "data:tea",
        "without ccd the cached copy outlives the owner's delete"
    );
    write(&mut c, "update:@bob:cup.app@carol coffee").await;
    assert_eq!(
        send(&mut c, "llookup:@bob:cup.app@carol").await,
        "data:coffee"
    );
    arrived(&mut monitor, key, "update", Some("coffee")).await;
    assert_eq!(send(&mut b, "lookup:cup.app@carol").await, "data:coffee");
    assert_eq!(
        code(&send(&mut b, "llookup:cached:@bob:cup.app@carol").await),
        "AT0015",
        "a value its owner no longer lets be cached is not kept"
    );
    assert_eq!(send(&mut b, "lookup:cup.app@carol").await, "data:coffee");

    // Updates with a ttr replace the cached copy.
    let key = "@bob:mug.app@carol";
    write(&mut c, "update:ttr:86400:@bob:mug.app@carol tea").await;
    arrived(&mut monitor, key, "update", Some("tea")).await;
    write(&mut c, "update:ttr:86400:@bob:mug.app@carol coffee").await;
    arrived(&mut monitor, key, "update", Some("coffee")).await;
    assert_eq!(
        send(&mut b, "llookup:cached:@bob:mug.app@carol").await,
        "data:coffee"
    );
    assert_eq!(send(&mut b, "lookup:mug.app@carol").await, "data:coffee");
    // An update that does not mention ttr keeps the owner's ttr, and the copy follows it.
    write(&mut c, "update:@bob:mug.app@carol cocoa").await;
    arrived(&mut monitor, key, "update", Some("cocoa")).await;
    assert_eq!(
        send(&mut b, "llookup:cached:@bob:mug.app@carol").await,
        "data:cocoa"
    );
    // ttr:0 stops caching: the copy goes, the owner's value is read remotely.
    write(&mut c, "update:ttr:0:@bob:mug.app@carol milk").await;
    arrived(&mut monitor, key, "update", Some("milk")).await;
    assert_eq!(
        code(&send(&mut b, "llookup:cached:@bob:mug.app@carol").await),
        "AT0015"
    );
    assert_eq!(send(&mut b, "lookup:mug.app@carol").await, "data:milk");

    // Delete with ccd: the copy goes with the owner's record; a new share, with or without
    // ttr, is read as it is.
    let key = "@bob:pot.app@carol";
    write(&mut c, "update:ttr:86400:ccd:true:@bob:pot.app@carol tea").await;
    arrived(&mut monitor, key, "update", Some("tea")).await;
    write(&mut c, "delete:@bob:pot.app@carol").await;
    arrived(&mut monitor, key, "delete", None).await;
    assert_eq!(code(&send(&mut b, "lookup:pot.app@carol").await), "AT0015");
    write(&mut c, "update:@bob:pot.app@carol coffee").await;
    arrived(&mut monitor, key, "update", Some("coffee")).await;
    assert_eq!(send(&mut b, "lookup:pot.app@carol").await, "data:coffee");
    write(&mut c, "update:ttr:86400:@bob:pot.app@carol cocoa").await;
    arrived(&mut monitor, key, "update", Some("cocoa")).await;
    assert_eq!(
        send(&mut b, "llookup:cached:@bob:pot.app@carol").await,
        "data:cocoa"
    );
    assert_eq!(send(&mut b, "lookup:pot.app@carol").await, "data:cocoa");

    // Delete without ccd, then a new share with ttr: the copy is replaced.
    write(&mut c, "delete:@bob:pot.app@carol").await;
    arrived(&mut monitor, key, "delete", None).await;
    write(&mut c, "update:ttr:86400:@bob:pot.app@carol tea").await;
    arrived(&mut monitor, key, "update", Some("tea")).await;
    assert_eq!(send(&mut b, "lookup:pot.app@carol").await, "data:tea");

    // An update notification without a value (a client's own `notify`) says the owner's value
    // changed without saying to what: the copy goes and the next lookup asks the owner.
    let key = "@bob:jug.app@carol";
    write(&mut c, "update:ttr:86400:@bob:jug.app@carol tea").await;
    arrived(&mut monitor, key, "update", Some("tea")).await;
    write(
        &mut c,
        "notify:id:outdated-1:update:ttr:86400:@bob:jug.app@carol:outdated",
    )
    .await;
    arrived(&mut monitor, key, "update", Some("outdated")).await;
    assert_eq!(
        send(&mut b, "llookup:cached:@bob:jug.app@carol").await,
        "data:outdated"
    );
    write(
        &mut c,
        "notify:id:valueless-1:update:ttr:86400:@bob:jug.app@carol",
    )
    .await;
    arrived(&mut monitor, key, "update", None).await;
    assert_eq!(send(&mut b, "lookup:jug.app@carol").await, "data:tea");

    // A copy written from a notification that disagrees with the owner's record (a client's
    // own `notify` with a ttr for a record without one) is dropped by the next remote read.
    write(&mut c, "update:@bob:pan.app@carol real").await;
    arrived(&mut monitor, "@bob:pan.app@carol", "update", Some("real")).await;
    write(
        &mut c,
        "notify:id:claimed-1:update:ttr:86400:@bob:pan.app@carol:claimed",
    )
    .await;
    arrived(
        &mut monitor,
        "@bob:pan.app@carol",
        "update",
        Some("claimed"),
    )
    .await;
    assert_eq!(
        send(&mut b, "lookup:bypassCache:true:pan.app@carol").await,
        "data:real"
    );
    assert_eq!(send(&mut b, "lookup:pan.app@carol").await, "data:real");

    // ttr expiry: a copy kept after a delete without ccd is served until its refreshAt, then
    // the owner is asked again and the copy goes with its record (a wait on that condition).
    write(&mut c, "update:ttr:1:@bob:tin.app@carol tea").await;
    arrived(&mut monitor, "@bob:tin.app@carol", "update", Some("tea")).await;
    write(&mut c, "delete:@bob:tin.app@carol").await;
    arrived(&mut monitor, "@bob:tin.app@carol", "delete", None).await;
    assert_eq!(send(&mut b, "lookup:tin.app@carol").await, "data:tea");
    poll_code(&mut b, "lookup:tin.app@carol", "AT0015").await;

    // Restarts of both sides: @carol shares again while @bob is down; the notification waits in
    // @carol's store through her restart and reaches @bob once he is back.
    write(&mut c, "update:ttr:86400:@bob:cup.app@carol tea").await;
    arrived(&mut monitor, "@bob:cup.app@carol", "update", Some("tea")).await;
    write(&mut c, "delete:@bob:cup.app@carol").await;
    arrived(&mut monitor, "@bob:cup.app@carol", "delete", None).await;
    drop((b, monitor));
    bob.kill().await;
    write(&mut c, "update:@bob:cup.app@carol coffee").await;
    drop(c);
    carol.kill().await;
    fleet.spawn(&mut carol).await;
    fleet.register(&carol).await;
    fleet.spawn(&mut bob).await;
    fleet.register(&bob).await;
    let mut b = fleet.owner(&bob).await;
    poll_until(&mut b, "lookup:cup.app@carol", "data:coffee").await;
    assert_eq!(
        code(&send(&mut b, "llookup:cached:@bob:cup.app@carol").await),
        "AT0015"
    );
    // The state survives a restart of @bob's server too.
    drop(b);
    bob.kill().await;
    fleet.spawn(&mut bob).await;
    fleet.register(&bob).await;
    let mut b = fleet.owner(&bob).await;
    assert_eq!(send(&mut b, "lookup:cup.app@carol").await, "data:coffee");
}
