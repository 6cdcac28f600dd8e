//! Issue 5 acceptance 2, shared part: two onboarded atSigns on two real atserver processes, each
//! on its own loopback address with a certificate naming only that address, resolved through the
//! real atDirectory. @bob reads what @alice shared through his own server
//! (remote fetch over server-to-server, then cache), and @alice's notifications reach @bob's
//! monitor through the servers' delivery.

mod common;

use std::time::Duration;

use common::{Atctl, Fleet, Monitor, Run};

/// Runs `args` until `done` accepts the result: notifications between servers are delivered
/// asynchronously, so a recipient's copy changes shortly after the owner's write (bounded wait).
async fn until(atctl: &Atctl, args: &[&str], done: impl Fn(&Run) -> bool) -> Run {
    let mut last = None;
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let run = atctl.run(args).await;
            if done(&run) {
                return run;
            }
            last = Some(run);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("atctl {args:?} never reached the expected state: {last:?}"))
}

/// `atctl -a @alice share <key> --with @bob <flags>`, which must succeed.
async fn alice_shares_with_bob(atctl: &Atctl, key: &str, flags: &[&str]) -> Run {
    let mut args = vec!["-a", "@alice", "share", key, "--with", "@bob"];
    args.extend_from_slice(flags);
    atctl.run(&args).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bob_reads_what_alice_shared_through_his_own_server() {
    let mut fleet = Fleet::start().await;
    let _alice = fleet.server_on_own_host("@alice", "127.0.0.2").await;
    let bob = fleet.server_on_own_host("@bob", "127.0.0.3").await;
    // One keys folder holding both atSigns: `-a` chooses who acts.
    let atctl = fleet.atctl("keys");
    atctl.onboard_keys("@alice").await;
    let bob_keys = atctl.onboard_keys("@bob").await;

    atctl
        .run(&["-a", "@alice", "put", "phone.wavi", "+234 555 0100"])
        .await
        .ok();
    let run = alice_shares_with_bob(&atctl, "phone.wavi", &["--ttr", "86400"]).await;
    assert!(run.stdout.contains("as @bob:phone.wavi@alice"), "{run:?}");
    // Without a ttr the value is never cached on @bob's side: every read is a remote fetch.
    alice_shares_with_bob(&atctl, "email.wavi", &["--value", "alice@example.com"]).await;

    // The share's update notification leaves a copy on @bob's server (it has a ttr) ...
    let mut b = fleet.owner_conn(&bob, &bob_keys).await;
    tokio::time::timeout(Duration::from_secs(60), async {
        while b
            .send_data("llookup:cached:@bob:phone.wavi@alice")
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the share notification reaches @bob's server");
    // ... which is dropped, so that @bob's read is a remote fetch from @alice's server.
    b.send_data("delete:cached:@bob:phone.wavi@alice")
        .await
        .unwrap();
    let run = atctl
        .run(&["-a", "@bob", "--json", "get", "phone.wavi@alice"])
        .await
        .ok();
    assert_eq!(run.json()["value"], "+234 555 0100", "{run:?}");
    assert_eq!(run.json()["metadata"]["ttr"], 86400, "{run:?}");
    // ... which @bob's server now keeps (ttr), and answers from.
    let cached = b
        .send_data("llookup:all:cached:@bob:phone.wavi@alice")
        .await
        .unwrap();
    let cached: serde_json::Value = serde_json::from_str(&cached).unwrap();
    assert_ne!(cached["data"], "+234 555 0100", "cached encrypted");
    let run = atctl
        .run(&["-a", "@bob", "get", "@bob:phone.wavi@alice"])
        .await
        .ok();
    assert_eq!(run.stdout.trim(), "+234 555 0100");
    let run = atctl
        .run(&["-a", "@bob", "get", "email.wavi@alice"])
        .await
        .ok();
    assert_eq!(run.stdout.trim(), "alice@example.com");
    assert!(
        b.send_data("llookup:cached:@bob:email.wavi@alice")
            .await
            .is_err(),
        "no ttr, no copy on @bob's server"
    );

    // An update reaches @bob's cached copy through the update notification.
    let update = ["--ttr", "86400", "--value", "+234 555 0111"];
    alice_shares_with_bob(&atctl, "phone.wavi", &update).await;
    until(&atctl, &["-a", "@bob", "get", "phone.wavi@alice"], |r| {
        r.code == 0 && r.stdout.trim() == "+234 555 0111"
    })
    .await;

    // What @alice did not share with @bob stays out of reach: not found (exit 4).
    let run = atctl.run(&["-a", "@bob", "get", "secret.wavi@alice"]).await;
    assert_eq!(run.code, 4, "{run:?}");
    // A key shared with someone else is refused before anything is sent.
    let run = atctl
        .run(&["-a", "@bob", "get", "@carol:phone.wavi@alice"])
        .await;
    assert_eq!(run.code, 2, "{run:?}");

    // Deleting (ccd true) removes @bob's cached copy too: not found on his next read.
    let pin = ["--ttr", "-1", "--ccd", "true", "--value", "4321"];
    alice_shares_with_bob(&atctl, "pin.wavi", &pin).await;
    let run = atctl
        .run(&["-a", "@bob", "get", "pin.wavi@alice"])
        .await
        .ok();
    assert_eq!(run.stdout.trim(), "4321");
    atctl
        .run(&["-a", "@alice", "delete", "@bob:pin.wavi@alice"])
        .await
        .ok();
    until(&atctl, &["-a", "@bob", "get", "pin.wavi@alice"], |r| {
        r.code == 4
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_notifies_bob_across_servers() {
    let mut fleet = Fleet::start().await;
    let _alice = fleet.server_on_own_host("@alice", "127.0.0.2").await;
    let _bob = fleet.server_on_own_host("@bob", "127.0.0.3").await;
    let a = fleet.atctl("alice");
    let b = fleet.atctl("bob");
    a.onboard_keys("@alice").await;
    b.onboard_keys("@bob").await;

    let mut monitor = Monitor::start(&b, "@bob");
    let id = a
        .run(&[
            "--json",
            "notify",
            "@bob:note.app@alice",
            "remember the milk",
        ])
        .await
        .ok()
        .json_str("id");
    let got = monitor
        .next_match(|v| v["notification"]["id"] == id.as_str())
        .await;
    assert_eq!(got["notification"]["from"], "@alice", "{got}");
    assert_eq!(got["notification"]["to"], "@bob", "{got}");
    assert_eq!(got["notification"]["key"], "@bob:note.app@alice", "{got}");
    assert_eq!(got["decryptedValue"], "remember the milk", "{got}");

    // The monitor is certainly live now: these arrive through delivery, not replay.
    let id = a
        .run(&["--json", "notify", "@bob:note.app@alice", "and the eggs"])
        .await
        .ok()
        .json_str("id");
    let got = monitor
        .next_match(|v| v["notification"]["id"] == id.as_str())
        .await;
    assert_eq!(got["decryptedValue"], "and the eggs", "{got}");
    a.run(&["notify", "--text", "@bob", "ping from alice"])
        .await
        .ok();
    let got = monitor
        .next_match(|v| v["notification"]["messageType"] == "MessageType.text")
        .await;
    assert_eq!(got["notification"]["from"], "@alice", "{got}");
    assert!(
        got["notification"]["key"]
            .as_str()
            .is_some_and(|k| k.contains("ping from alice")),
        "{got}"
    );
    monitor.child.kill().await.ok();

    // A monitor started later replays what was stored for @bob, decrypted.
    let mut replay = Monitor::start(&b, "@bob");
    replay
        .next_match(|v| v["decryptedValue"] == "remember the milk")
        .await;
    replay
        .next_match(|v| v["decryptedValue"] == "and the eggs")
        .await;
    replay.child.kill().await.ok();
}
