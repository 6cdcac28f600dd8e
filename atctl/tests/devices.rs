//! Acceptance 3 (a second device through an OTP enrollment, limited to its namespaces), plus
//! notify/monitor and the shared-key records, against real atserver and atdirectory processes.

mod common;

use std::time::Duration;

use at_protocol::crypto::{pub_key_cs, rsa_decrypt, AesKey, AtKeysFile, Iv};
use common::{Atctl, Fleet};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// The first enrollment `approver` sees pending, while the device's `request` still waits for it
/// (bounded wait).
async fn first_pending(approver: &Atctl, request: &mut Child) -> serde_json::Value {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let run = approver
                .run(&["--json", "enroll", "list", "--status", "pending"])
                .await
                .ok();
            if let Some(e) = run.json()["enrollments"].as_array().and_then(|a| a.first()) {
                return e.clone();
            }
            if let Ok(Some(status)) = request.try_wait() {
                panic!("enroll request exited before it was pending: {status:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the request shows up as pending")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_device_enrolls_with_otp_and_is_limited_to_its_namespaces() {
    let mut fleet = Fleet::start().await;
    let _alice = fleet.server("@alice").await;
    let phone = fleet.atctl("phone");
    let laptop = fleet.atctl("laptop");
    phone.onboard_keys("@alice").await;
    phone.run(&["put", "secret.wavi@alice", "w1"]).await.ok();

    let otp = phone.run(&["--json", "otp"]).await.ok().json_str("otp");
    // The new device asks and waits; the first device approves what it sees pending.
    let mut request = laptop
        .command(&[
            "--json",
            "enroll",
            "request",
            "@alice",
            "--otp",
            &otp,
            "--app-name",
            "buzz",
            "--device-name",
            "laptop",
            "--namespace",
            "buzz:rw",
        ])
        .spawn()
        .unwrap();
    let pending = first_pending(&phone, &mut request).await;
    assert_eq!(pending["appName"], "buzz");
    assert_eq!(pending["namespaces"]["buzz"], "rw");
    let id = pending["enrollmentId"].as_str().unwrap().to_owned();
    phone.run(&["enroll", "approve", &id]).await.ok();
    let out = tokio::time::timeout(Duration::from_secs(60), request.wait_with_output())
        .await
        .expect("enroll request finishes after approval")
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["enrollmentId"], id.as_str());
    let laptop_keys = AtKeysFile::load(&laptop.keys_file("@alice"))
        .unwrap()
        .decrypt()
        .unwrap();
    assert_eq!(laptop_keys.enrollment_id.as_deref(), Some(id.as_str()));

    // Inside its namespace the laptop reads and writes; the phone reads what it wrote (same self key).
    laptop.run(&["auth", "check"]).await.ok();
    laptop.run(&["put", "note.buzz@alice", "hello"]).await.ok();
    let run = phone.run(&["get", "note.buzz@alice"]).await.ok();
    assert_eq!(run.stdout.trim(), "hello");
    // Outside it: refused with AT0009, for writes and reads.
    let run = laptop.run(&["put", "note.wavi@alice", "x"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("AT0009"), "{run:?}");
    let run = laptop.run(&["get", "secret.wavi@alice"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("AT0009"), "{run:?}");

    // Revoked: the laptop can no longer authenticate (exit 3).
    phone.run(&["enroll", "revoke", &id]).await.ok();
    let run = laptop.run(&["auth", "check"]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("AT0027"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_otp_and_denied_requests_fail_cleanly() {
    let mut fleet = Fleet::start().await;
    let _alice = fleet.server("@alice").await;
    let phone = fleet.atctl("phone");
    let tablet = fleet.atctl("tablet");
    phone.onboard_keys("@alice").await;
    let otp = phone.run(&["otp"]).await.ok().stdout.trim().to_owned();
    let mut request = tablet
        .command(&[
            "enroll",
            "request",
            "@alice",
            "--otp",
            &otp,
            "--device-name",
            "tablet",
            "--namespace",
            "buzz:r",
        ])
        .spawn()
        .unwrap();
    let id = first_pending(&phone, &mut request).await["enrollmentId"]
        .as_str()
        .unwrap()
        .to_owned();
    phone.run(&["enroll", "deny", &id]).await.ok();
    let out = tokio::time::timeout(Duration::from_secs(60), request.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("AT0025"),
        "{out:?}"
    );
    assert!(!tablet.keys_file("@alice").exists());

    // A wrong OTP (last: the server throttles this address after it).
    let run = tablet
        .run(&[
            "enroll",
            "request",
            "@alice",
            "--otp",
            "WRONG1",
            "--device-name",
            "tablet2",
            "--namespace",
            "buzz:r",
        ])
        .await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("atctl otp"), "{run:?}");
    assert!(!tablet.keys_file("@alice").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_to_self_reaches_the_monitor() {
    let mut fleet = Fleet::start().await;
    let _alice = fleet.server("@alice").await;
    let atctl = fleet.atctl("keys");
    atctl.onboard_keys("@alice").await;
    let id = atctl
        .run(&["--json", "notify", "@alice:msg.app@alice", "hello there"])
        .await
        .ok()
        .json_str("id");
    atctl
        .run(&["notify", "--text", "@alice", "ping"])
        .await
        .ok();
    // Replay from time 0 avoids racing the monitor's start against the notifications.
    let mut monitor = atctl
        .command(&["--json", "monitor", "--since", "0"])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(monitor.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            seen.push(v.clone());
            let key_seen = seen.iter().any(|v| {
                v["notification"]["id"] == id.as_str() && v["decryptedValue"] == "hello there"
            });
            let text_seen = seen
                .iter()
                .any(|v| v["notification"]["messageType"] == "MessageType.text");
            if key_seen && text_seen {
                return;
            }
        }
        panic!("monitor ended early: {seen:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("notifications not seen: {seen:?}"));
    // Interrupting the stream (Ctrl-C) ends it cleanly.
    let pid = monitor.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(30), monitor.wait())
        .await
        .expect("monitor stops on SIGINT")
        .unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_values_are_encrypted_for_the_recipient() {
    let mut fleet = Fleet::start().await;
    let alice = fleet.server("@alice").await;
    let _bob = fleet.server("@bob").await;
    let a = fleet.atctl("alice");
    let b = fleet.atctl("bob");
    let alice_keys = a.onboard_keys("@alice").await;
    let bob_keys = b.onboard_keys("@bob").await;

    a.run(&["put", "phone.wavi", "+1 555", "-a", "@alice"])
        .await
        .ok();
    a.run(&["share", "phone.wavi", "--with", "@bob", "--ttr", "86400"])
        .await
        .ok();
    let run = a.run(&["get", "@bob:phone.wavi@alice"]).await.ok();
    assert_eq!(run.stdout.trim(), "+1 555");

    // What alice's server holds: ciphertext plus what bob needs, and nothing bob's keys cannot open.
    let mut conn = fleet.owner_conn(&alice, &alice_keys).await;
    let all = conn
        .send_data("llookup:all:@bob:phone.wavi@alice")
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&all).unwrap();
    let meta = &v["metaData"];
    assert_eq!(meta["isEncrypted"], true, "{v}");
    assert_eq!(meta["ttr"], 86400, "{v}");
    let bob_pub = bob_keys.encryption.public_b64().unwrap();
    assert_eq!(meta["pubKeyCS"], pub_key_cs(&bob_pub).as_str(), "{v}");
    let k_text = rsa_decrypt(
        bob_keys.encryption.private_key(),
        meta["sharedKeyEnc"].as_str().unwrap(),
    )
    .unwrap();
    let k = AesKey::from_b64(&k_text).unwrap();
    let iv = Iv::from_b64(meta["ivNonce"].as_str().unwrap()).unwrap();
    assert_ne!(v["data"], "+1 555");
    assert_eq!(
        k.decrypt_b64(&iv, v["data"].as_str().unwrap()).unwrap(),
        "+1 555"
    );
    // Bob's copy of the shared key opens with his private key; alice's with hers; same key.
    let for_bob = conn
        .send_data("llookup:@bob:shared_key@alice")
        .await
        .unwrap();
    assert_eq!(
        rsa_decrypt(bob_keys.encryption.private_key(), &for_bob).unwrap(),
        k_text
    );
    let for_alice = conn
        .send_data("llookup:shared_key.bob@alice")
        .await
        .unwrap();
    assert_eq!(
        rsa_decrypt(alice_keys.encryption.private_key(), &for_alice).unwrap(),
        k_text
    );
    // A second value reuses the same shared key.
    a.run(&["put", "@bob:email.wavi@alice", "a@example.com"])
        .await
        .ok();
    let again = conn
        .send_data("llookup:shared_key.bob@alice")
        .await
        .unwrap();
    assert_eq!(again, for_alice);
    let run = a
        .run(&["--json", "get", "@bob:email.wavi@alice"])
        .await
        .ok();
    assert_eq!(run.json()["value"], "a@example.com");

    // Sharing with someone never onboarded: not found, with advice.
    let _carol = fleet.server("@carol").await;
    let run = a.run(&["put", "@carol:x.wavi@alice", "y"]).await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("onboarded"), "{run:?}");
}
