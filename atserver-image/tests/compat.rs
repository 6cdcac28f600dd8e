//! Behaviour decided against the reference atServer (README, "Compatibility with the reference
//! atServer"), over TLS against an in-process server with a manual clock.

mod common;

use atserver::notifications::{Operation, Priority};
use common::{data, json, keys, TestServer, ATSIGN};
use serde_json::Value;

fn code(reply: &str) -> &str {
    let body = reply
        .strip_prefix("error:")
        .unwrap_or_else(|| panic!("expected error, got {reply}"));
    &body[..6]
}

#[tokio::test]
async fn notifications_live_fifteen_minutes_unless_ttln_says_otherwise() {
    let server = TestServer::start().await;
    let mut c = server.owner().await;
    let plain = "aaaaaaaa-0000-0000-0000-000000000001";
    let long = "aaaaaaaa-0000-0000-0000-000000000002";
    assert_eq!(
        c.send(&format!("notify:id:{plain}:@alice:a.app@alice:v"))
            .await,
        format!("data:{plain}")
    );
    assert_eq!(
        c.send(&format!(
            "notify:id:{long}:ttln:3600000:@alice:b.app@alice:v"
        ))
        .await,
        format!("data:{long}")
    );
    server.clock.advance(15 * 60 * 1000 - 1);
    assert_eq!(
        c.send(&format!("notify:status:{plain}")).await,
        "data:delivered"
    );
    server.clock.advance(1);
    assert_eq!(
        c.send(&format!("notify:status:{plain}")).await,
        "data:expired"
    );
    assert_eq!(
        c.send(&format!("notify:status:{long}")).await,
        "data:delivered"
    );
    server.stop().await;
}

#[tokio::test]
async fn info_lists_features_in_the_reference_shape() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    let info = json(&c.send("info").await);
    let features = info["features"].as_array().expect("features list");
    let names: Vec<&str> = features.iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(names, ["noop:", "info:"]);
    for f in features {
        for member in ["status", "description", "syntax"] {
            assert!(f[member].is_string(), "{member} in {f}");
        }
    }
    // info:brief stays brief.
    let brief = json(&c.send("info:brief").await);
    assert!(brief.get("features").is_none());
    server.stop().await;
}

#[tokio::test]
async fn a_monitor_being_fed_is_not_idle() {
    let server = TestServer::start().await;
    let mut mon = server.owner().await;
    mon.write(b"monitor\n").await;
    let mut sender = server.owner().await;
    // The witness sends nothing after authenticating: it shows when the reaper has looked.
    let mut witness = server.owner().await;
    server.clock.advance(50 * 60 * 1000);
    assert!(sender
        .send("notify:@alice:ping.app@alice:v")
        .await
        .starts_with("data:"));
    let line = mon.read_line().await;
    assert!(line.starts_with("notification: "), "{line}");
    // 70 minutes since the monitor's last command, 20 since the server last wrote to it.
    server.clock.advance(20 * 60 * 1000);
    assert!(witness.closed().await, "idle an hour and more: closed");
    mon.write(b"noop:0\n").await;
    assert_eq!(mon.read_line().await, "data:ok");
    // An hour after that last reply the monitor goes too.
    server.clock.advance(60 * 60 * 1000 + 1);
    assert!(mon.closed().await);
    server.stop().await;
}

/// A manager enrollment (CRAM onboarding) and a second device approved for namespace buzz.
async fn apkam_device(server: &TestServer) -> (common::Client, common::Client, String) {
    let mut first = server.owner().await;
    let first_keys = keys::rsa_keypair();
    let r = json(
        &first
            .send(&format!(
                r#"enroll:request:{{"appName":"wavi","deviceName":"phone","apkamPublicKey":"{}"}}"#,
                first_keys.public
            ))
            .await,
    );
    let first_id = r["enrollmentId"].as_str().unwrap().to_string();
    let mut manager = server.connect().await;
    assert_eq!(
        manager.pkam(&first_keys.private, Some(&first_id)).await,
        "data:success"
    );
    let otp = data(&manager.send("otp:get").await).to_string();
    let device = keys::rsa_keypair();
    let mut newdev = server.connect().await;
    let req = json(&newdev.send(&format!(
        r#"enroll:request:{{"appName":"buzz","deviceName":"pixel","namespaces":{{"buzz":"rw"}},"otp":"{otp}","apkamPublicKey":"{}","encryptedAPKAMSymmetricKey":"a2V5"}}"#,
        device.public
    )).await);
    let id = req["enrollmentId"].as_str().unwrap().to_string();
    let approved = json(
        &manager
            .send(&format!(r#"enroll:approve:{{"enrollmentId":"{id}"}}"#))
            .await,
    );
    assert_eq!(approved["status"], "approved");
    let mut dev = server.connect().await;
    assert_eq!(dev.pkam(&device.private, Some(&id)).await, "data:success");
    (manager, dev, id)
}

#[tokio::test]
async fn an_enrollment_reads_public_keys_outside_its_namespaces() {
    let server = TestServer::start().await;
    let (mut manager, mut dev, _) = apkam_device(&server).await;
    assert!(manager
        .send("update:public:pic.wavi@alice p")
        .await
        .starts_with("data:"));
    assert!(manager
        .send("update:secret.wavi@alice s")
        .await
        .starts_with("data:"));
    assert_eq!(dev.send("llookup:public:pic.wavi@alice").await, "data:p");
    // Cached public data of other atSigns too.
    let shared = server.handle().shared().clone();
    atserver::keystore::put(
        &shared,
        "cached:public:pic.wavi@bob",
        Some("b".into()),
        &atserver::metadata::MetaUpdate::default(),
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        dev.send("llookup:cached:public:pic.wavi@bob").await,
        "data:b"
    );
    // Still confined for everything else.
    assert_eq!(code(&dev.send("llookup:secret.wavi@alice").await), "AT0009");
    assert_eq!(
        code(&dev.send("update:public:pic.wavi@alice q").await),
        "AT0009"
    );
    server.stop().await;
}

#[tokio::test]
async fn enroll_list_without_manage_shows_the_own_record() {
    let server = TestServer::start().await;
    let (mut manager, mut dev, id) = apkam_device(&server).await;
    let own: serde_json::Map<String, Value> =
        serde_json::from_value(json(&dev.send("enroll:list").await)).unwrap();
    let key = format!("{id}.new.enrollments.__manage{ATSIGN}");
    assert_eq!(own.keys().collect::<Vec<_>>(), [&key]);
    assert_eq!(own[&key]["appName"], "buzz");
    assert_eq!(own[&key]["status"], "approved");
    // A status filter still applies.
    let none = json(
        &dev.send(r#"enroll:list:{"enrollmentStatusFilter":["pending"]}"#)
            .await,
    );
    assert_eq!(none, serde_json::json!({}));
    // The manager sees both.
    let all: serde_json::Map<String, Value> =
        serde_json::from_value(json(&manager.send("enroll:list").await)).unwrap();
    assert_eq!(all.len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn delete_priority_reaches_the_recipients_notification() {
    let server = TestServer::start().await;
    let mut c = server.owner().await;
    for key in ["@bob:hi.app@alice", "@bob:lo.app@alice"] {
        assert!(c
            .send(&format!("update:{key} v"))
            .await
            .starts_with("data:"));
    }
    assert!(c
        .send("delete:priority:high:@bob:hi.app@alice")
        .await
        .starts_with("data:"));
    assert!(c
        .send("delete:@bob:lo.app@alice")
        .await
        .starts_with("data:"));
    let shared = server.handle().shared().clone();
    let all = shared
        .store
        .call(|db| db.notification_counts())
        .await
        .unwrap();
    let priority_of_delete = |key: &str| {
        all.iter()
            .find(|n| n.key == key && n.operation == Operation::Delete && n.to == "@bob")
            .unwrap_or_else(|| panic!("a delete notification of {key}"))
            .priority
    };
    assert_eq!(priority_of_delete("@bob:hi.app@alice"), Priority::High);
    assert_eq!(priority_of_delete("@bob:lo.app@alice"), Priority::Low);
    server.stop().await;
}
