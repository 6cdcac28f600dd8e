//! Black-box protocol tests over TLS against an in-process server.

mod common;

use common::{data, json, keys, Client, TestServer, ATSIGN, SECRET};
use serde_json::Value;

fn code(reply: &str) -> &str {
    let body = reply
        .strip_prefix("error:")
        .unwrap_or_else(|| panic!("expected error, got {reply}"));
    &body[..6]
}

#[tokio::test]
async fn greeting_prompts_blank_lines_and_exit() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    // A blank line gets an answer (at_c relies on it) and the connection stays usable.
    let r = c.send_raw("").await;
    assert!(r.starts_with("error:AT0003-") && r.ends_with("\n@"), "{r}");
    assert_eq!(
        c.send_raw("\r").await.lines().next().map(|l| &l[..12]),
        Some("error:AT0003")
    );
    // Reply and prompt arrive together; unknown verbs are AT0003 and the connection survives.
    assert_eq!(code(&c.send("sync:5").await), "AT0003");
    assert_eq!(c.send_raw("noop:0").await, "data:ok\n@");
    assert_eq!(code(&c.send("noop:6000").await), "AT0022");
    c.write(b"@exit\n").await;
    assert!(c.closed().await);
    server.stop().await;
}

#[tokio::test]
async fn unauthenticated_use_of_owner_verbs_is_at0401() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    for cmd in [
        "update:phone@alice 1",
        "update:meta:phone@alice:ttl:1",
        "llookup:phone@alice",
        "plookup:publickey@bob",
        "delete:phone@alice",
        "stats",
        "config:block:show",
        "monitor",
        "notify:@alice:x@alice:v",
        "notify:list",
        "notify:status:abc",
        "notify:fetch:abc",
        "notify:remove:abc",
        "notify:all:@bob:x@alice:v",
        "sync:from:-1:limit:10",
        "batch:[]",
        "otp:get",
        "keys:get:public",
        "enroll:list",
        "enroll:approve:{\"enrollmentId\":\"x\"}",
        "update:json:{}",
    ] {
        let r = c.send_raw(cmd).await;
        assert!(
            r.starts_with("error:AT0401-Exception: ") && r.ends_with("\n@"),
            "{cmd}: {r}"
        );
    }
    // Still usable afterwards.
    assert_eq!(c.send("noop:0").await, "data:ok");
    server.stop().await;
}

#[tokio::test]
async fn cram_then_legacy_onboarding_then_pkam() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    // Wrong digest: AT0401, connection stays open.
    let ch = c.send("from:alice").await;
    let ch = data(&ch);
    assert!(ch.starts_with('_') && ch.contains("@alice:"), "{ch}");
    assert_eq!(code(&c.send("cram:00").await), "AT0401");
    c.cram(SECRET).await;

    let pkam = keys::rsa_keypair();
    let enc = keys::rsa_keypair();
    assert_eq!(
        c.send(&format!(
            "update:privatekey:at_pkam_publickey {}",
            pkam.public
        ))
        .await,
        "data:-1"
    );
    // A second from: on the authenticated connection is allowed (atsdk onboarding does this).
    assert_eq!(c.pkam(&pkam.private, None).await, "data:success");
    let id: i64 = data(
        &c.send(&format!("update:public:publickey@alice {}", enc.public))
            .await,
    )
    .parse()
    .unwrap();
    assert!(id >= 0);
    assert_eq!(c.send("delete:privatekey:at_secret").await, "data:-1");

    // CRAM is now refused (key not found), PKAM works on a fresh connection.
    let mut d = server.connect().await;
    d.send("from:@alice").await;
    assert_eq!(code(&d.send("cram:abc").await), "AT0015");
    let mut e = server.connect().await;
    assert_eq!(e.pkam(&pkam.private, None).await, "data:success");
    // SHA-512 and a bad signature.
    let bad = e.pkam(&enc.private, None).await;
    assert_eq!(code(&bad), "AT0401");
    // pkam without from: is AT0015.
    let mut f = server.connect().await;
    assert_eq!(code(&f.send("pkam:AAAA").await), "AT0015");
    server.stop().await;
}

#[tokio::test]
async fn update_lookup_views_and_metadata() {
    let server = TestServer::start().await;
    let mut c = server.owner().await;
    let r = c
        .send_raw("update:public:location.wavi@alice Lagos, Nigeria")
        .await;
    assert!(r.starts_with("data:") && r.ends_with("\n@alice@"), "{r}");
    c.send("update:isEncrypted:true:ivNonce:AbCd==:phone.wavi@alice CipherText")
        .await;
    c.send("update:ttr:86400:ccd:true:isEncrypted:true:sharedKeyEnc:S3k=:pubKeyCS:abc:@bob:phone.wavi@alice Zm9v").await;
    c.send("update:@alice:note@alice for-me").await;

    // Values keep case, keys do not.
    assert_eq!(
        c.send("llookup:public:LOCATION.wavi@alice").await,
        "data:Lagos, Nigeria"
    );
    let all = json(&c.send("llookup:all:phone.wavi@alice").await);
    assert_eq!(all["key"], "phone.wavi@alice");
    assert_eq!(all["data"], "CipherText");
    assert_eq!(all["metaData"]["ivNonce"], "AbCd==");
    assert_eq!(all["metaData"]["isEncrypted"], true);
    assert_eq!(all["metaData"]["createdAt"], "2024-10-24 01:35:02.123Z");
    let meta = json(&c.send("llookup:meta:@bob:phone.wavi@alice").await);
    assert_eq!(meta["ttr"], 86400);
    assert_eq!(meta["ccd"], true);
    assert_eq!(meta["sharedKeyEnc"], "S3k=");
    assert_eq!(meta["version"], 0);
    assert!(meta.get("ttl").is_none(), "nulls are removed");

    // Owner lookup on own atSign reads @alice:<key>.
    assert_eq!(c.send("lookup:note@alice").await, "data:for-me");
    assert_eq!(
        c.send("plookup:location.wavi@alice").await,
        "data:Lagos, Nigeria"
    );
    assert_eq!(code(&c.send("llookup:missing@alice").await), "AT0015");

    // Anonymous lookup reads public: only.
    let mut anon = server.connect().await;
    assert_eq!(
        anon.send("lookup:location.wavi@alice").await,
        "data:Lagos, Nigeria"
    );
    assert_eq!(code(&anon.send("lookup:phone.wavi@alice").await), "AT0015");
    let all = json(&anon.send("lookup:all:location.wavi@alice").await);
    assert_eq!(all["data"], "Lagos, Nigeria");

    // update:meta changes metadata only and bumps the version.
    c.send("update:meta:phone.wavi@alice:ttr:-1:isEncrypted:true")
        .await;
    let all = json(&c.send("llookup:all:phone.wavi@alice").await);
    assert_eq!(all["data"], "CipherText");
    assert_eq!(all["metaData"]["version"], 1);
    assert_eq!(all["metaData"]["ttr"], -1);
    // A literal null clears a string field.
    c.send("update:ivNonce:null:isEncrypted:true:phone.wavi@alice Other")
        .await;
    assert!(json(&c.send("llookup:meta:phone.wavi@alice").await)
        .get("ivNonce")
        .is_none());

    // update:json
    let body =
        r#"{"atKey":"json.wavi@alice","value":"v1","metadata":{"ttr":10,"isEncrypted":true}}"#;
    assert!(data(&c.send(&format!("update:json:{body}")).await)
        .parse::<i64>()
        .is_ok());
    assert_eq!(
        json(&c.send("llookup:meta:json.wavi@alice").await)["ttr"],
        10
    );
    server.stop().await;
}

#[tokio::test]
async fn malformed_input_is_at0003_and_connection_stays() {
    let server = TestServer::start().await;
    let mut c = server.owner().await;
    for cmd in [
        "update:phone@alice",
        "update:ttl:-5:phone@alice 1",
        "update:ttr:-2:phone@alice 1",
        "update:meta:p@alice:ttl:abc",
        "llookup:nokey",
        "lookup:nokey",
        "scan:showhidden:maybe",
        "scan (",
        "sync:from:abc:limit:5",
        "monitor:x",
        "notify:",
        "notify:strategy:latest:@bob:x@alice:v",
        "stats:99",
        "config:block:add:bob",
        "batch:not json",
        "from:a:b",
        "pkam:",
        "info:bogus",
        "noop:x",
        "otp:zap",
        "enroll:dance",
        "cram:",
        "update:json:{not json",
        "delete:",
        "delete:a b@alice",
        "plookup:nokey",
        "notify:list:2024-13-45:x:y:z",
        "notify:status:",
        "notify:fetch:",
        "notify:remove:bad id!",
        "notify:all:",
        "keys:explode",
        "config:bogus",
    ] {
        let r = c.send_raw(cmd).await;
        assert!(
            r.starts_with("error:AT0003-Invalid syntax : ") && r.ends_with("\n@alice@"),
            "{cmd}: {r}"
        );
    }
    // Key rules: another owner is AT0016; cached, private and local keys are refused
    // (AT0003 by grammar, as in the reference server).
    assert_eq!(code(&c.send("update:x@bob 1").await), "AT0016");
    for cmd in [
        "update:cached:public:x@bob 1",
        "update:private:x@alice 1",
        "update:local:x@alice 1",
        "update:privatekey:custom 1",
    ] {
        assert!(
            ["AT0003", "AT0016"].contains(&code(&c.send(cmd).await)),
            "{cmd}"
        );
    }
    // Protected keys.
    assert_eq!(
        code(&c.send("delete:public:signing_publickey@alice").await),
        "AT0009"
    );
    assert_eq!(c.send("noop:0").await, "data:ok");
    server.stop().await;
}

#[tokio::test]
async fn scan_views() {
    let server = TestServer::start().await;
    let mut c = server.owner().await;
    for cmd in [
        "update:public:location.wavi@alice L",
        "update:public:_hidden@alice H",
        "update:public:__visible@alice V",
        "update:phone.wavi@alice P",
        "update:_secret.wavi@alice S",
        "update:@bob:phone.wavi@alice B",
    ] {
        c.send(cmd).await;
    }
    let owner: Vec<String> = serde_json::from_value(json(&c.send("scan").await)).unwrap();
    assert!(owner.contains(&"public:location.wavi@alice".to_string()));
    assert!(owner.contains(&"phone.wavi@alice".to_string()));
    assert!(owner.contains(&"@bob:phone.wavi@alice".to_string()));
    assert!(owner.contains(&"@alice:signing_privatekey@alice".to_string()));
    assert!(!owner
        .iter()
        .any(|k| k.starts_with("public:_") || k.starts_with("_") || k.starts_with("private")));
    let hidden: Vec<String> =
        serde_json::from_value(json(&c.send("scan:showHidden:true").await)).unwrap();
    assert!(hidden.contains(&"public:__visible@alice".to_string()));
    assert!(hidden.contains(&"_secret.wavi@alice".to_string()));
    assert!(!hidden.contains(&"public:_hidden@alice".to_string()));
    assert!(hidden.iter().all(|k| k.contains('@')), "{hidden:?}");
    let filtered: Vec<String> = serde_json::from_value(json(&c.send("scan .*wavi").await)).unwrap();
    assert!(
        filtered.iter().all(|k| k.contains("wavi")) && filtered.len() == 3,
        "{filtered:?}"
    );

    let mut anon = server.connect().await;
    let public: Vec<String> = serde_json::from_value(json(&anon.send("scan").await)).unwrap();
    assert!(public.contains(&"location.wavi@alice".to_string()));
    assert!(public.contains(&"signing_publickey@alice".to_string()));
    assert!(
        public
            .iter()
            .all(|k| !k.starts_with("public:") && !k.starts_with('_')),
        "{public:?}"
    );
    assert!(!public.iter().any(|k| k.contains("phone")));
    server.stop().await;
}

#[tokio::test]
async fn delete_commit_log_and_sync() {
    let server = TestServer::start().await;
    let mut c = server.owner().await;
    let a: i64 = data(&c.send("update:a.app@alice 1").await).parse().unwrap();
    let b: i64 = data(&c.send("update:ttr:10:@bob:b.app@alice 2").await)
        .parse()
        .unwrap();
    let a2: i64 = data(&c.send("update:a.app@alice 3").await).parse().unwrap();
    assert!(a < b && b < a2);
    // Never-committed keys answer -1.
    assert_eq!(c.send("update:public:_x@alice 1").await, "data:-1");
    assert_eq!(
        c.send("update:privatekey:at_pkam_publickey k").await,
        "data:-1"
    );
    // Deleting a missing key still commits.
    let d: i64 = data(&c.send("delete:missing.app@alice").await)
        .parse()
        .unwrap();
    assert!(d > a2);
    let del_a: i64 = data(&c.send("delete:a.app@alice").await).parse().unwrap();
    assert_eq!(code(&c.send("llookup:a.app@alice").await), "AT0015");

    let entries = json(&c.send(&format!("sync:from:{b}:limit:10")).await);
    let ops: Vec<(String, String)> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["atKey"].as_str().unwrap().to_string(),
                e["operation"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        vec![
            ("missing.app@alice".into(), "-".into()),
            ("a.app@alice".into(), "-".into())
        ]
    );
    let all = json(&c.send("sync:from:-1:limit:25").await);
    let bentry = all
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["atKey"] == "@bob:b.app@alice")
        .unwrap();
    assert_eq!(bentry["value"], "2");
    assert_eq!(
        bentry["metadata"]["ttr"], "10",
        "sync metadata values are strings"
    );
    assert_eq!(bentry["metadata"]["version"], "0");
    assert_eq!(bentry["operation"], "*");
    assert_eq!(bentry["commitId"], b);
    let filtered = json(&c.send("sync:from:-1:limit:25:b\\.app").await);
    assert!(filtered
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["atKey"] == "@bob:b.app@alice"
            || e["atKey"].as_str().unwrap().starts_with("public:")));
    assert_eq!(
        c.send(&format!("sync:from:{del_a}:limit:5")).await,
        "data:[]"
    );

    // stats:3 is the latest commit id as a string, with a space after data:.
    let s3 = c.send("stats:3").await;
    assert_eq!(
        s3,
        format!("data: [{{\"id\":\"3\",\"name\":\"lastCommitID\",\"value\":\"{del_a}\"}}]")
    );
    server.stop().await;
}

#[tokio::test]
async fn immutable_records_need_force_to_delete() {
    let server = TestServer::start().await;
    let mut c = server.owner().await;
    assert!(
        data(&c.send("update:immutable:true:fixed.app@alice v1").await)
            .parse::<i64>()
            .is_ok()
    );
    assert_eq!(code(&c.send("update:fixed.app@alice v2").await), "AT0009");
    assert_eq!(c.send("llookup:fixed.app@alice").await, "data:v1");
    assert_eq!(code(&c.send("delete:fixed.app@alice").await), "AT0009");
    assert!(data(&c.send("delete:force:fixed.app@alice").await)
        .parse::<i64>()
        .is_ok());
    assert_eq!(code(&c.send("llookup:fixed.app@alice").await), "AT0015");
    server.stop().await;
}

#[tokio::test]
async fn enroll_requests_are_limited_per_connection() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    let req = r#"enroll:request:{"appName":"a","deviceName":"d","namespaces":{"a":"r"},"otp":"NOPE12","apkamPublicKey":"k","encryptedAPKAMSymmetricKey":"s"}"#;
    for _ in 0..5 {
        assert_eq!(code(&c.send(req).await), "AT0011");
    }
    assert_eq!(code(&c.send(req).await), "AT0028");
    server.stop().await;
}

#[tokio::test]
async fn monitors_get_stats_notifications_after_commits() {
    let server = TestServer::start().await;
    let mut mon = server.owner().await;
    mon.write(b"monitor\n").await;
    let mut c = server.owner().await;
    let id = data(&c.send("update:x.app@alice 1").await).to_string();
    let line = mon.read_line().await;
    let n: Value = serde_json::from_str(line.strip_prefix("notification: ").unwrap()).unwrap();
    assert_eq!(n["id"], "-1");
    assert_eq!(n["key"], "statsNotification.@alice");
    assert_eq!(n["value"], id.as_str());
    assert_eq!(n["operation"], "update");
    server.stop().await;
}

#[tokio::test]
async fn peer_verbs_need_a_certificate_and_a_challenge() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    // from:@other without a client certificate: refused, connection kept.
    assert_eq!(code(&c.send("from:@bob").await), "AT0401");
    assert_eq!(c.send("noop:0").await, "data:ok");
    // pol without a from:@peer challenge closes the connection, as in the reference.
    assert_eq!(code(&c.send("pol").await), "AT0011");
    assert!(c.closed().await);
    server.stop().await;
}

#[tokio::test]
async fn batch_runs_each_command() {
    let server = TestServer::start().await;
    let mut c = server.owner().await;
    let body = r#"[{"id":1,"command":"update:x.app@alice v"},{"id":2,"command":"delete:x.app@alice"},{"id":3,"command":"update:bad"}]"#;
    let out = json(&c.send(&format!("batch:{body}")).await);
    let arr = out.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    assert!(arr[0]["response"]["data"]
        .as_str()
        .unwrap()
        .parse::<i64>()
        .is_ok());
    assert!(arr[1]["response"]["data"]
        .as_str()
        .unwrap()
        .parse::<i64>()
        .is_ok());
    assert_eq!(arr[2]["response"]["error_code"], "AT0003");
    server.stop().await;
}

#[tokio::test]
async fn notify_self_monitor_and_notification_verbs() {
    let server = TestServer::start().await;
    let mut sender = server.owner().await;
    let mut mon = server.owner().await;
    // monitor answers nothing at all.
    mon.write(b"monitor:selfNotifications .*\n").await;
    let id = "11111111-2222-3333-4444-555555555555";
    let r = sender
        .send(&format!(
            "notify:id:{id}:update:isEncrypted:true:ivNonce:SVY=:@alice:msg.app@alice:Y2lwaGVy"
        ))
        .await;
    assert_eq!(r, format!("data:{id}"));
    let line = mon.read_line().await;
    let n: Value = serde_json::from_str(line.strip_prefix("notification: ").unwrap()).unwrap();
    assert_eq!(n["id"], id);
    assert_eq!(n["key"], "@alice:msg.app@alice");
    assert_eq!(n["from"], "@alice");
    assert_eq!(n["to"], "@alice");
    assert_eq!(n["value"], "Y2lwaGVy");
    assert_eq!(n["operation"], "update");
    assert_eq!(n["messageType"], "MessageType.key");
    assert_eq!(n["metadata"]["ivNonce"], "SVY=");
    assert_eq!(n["epochMillis"], common::T0);
    // noop on a monitor connection answers a complete line without a prompt.
    mon.write(b"noop:0\n").await;
    assert_eq!(mon.read_line().await, "data:ok");

    assert_eq!(
        sender.send(&format!("notify:status:{id}")).await,
        "data:delivered"
    );
    assert_eq!(sender.send("notify:status:unknown").await, "data:null");
    let fetched = json(&sender.send(&format!("notify:fetch:{id}")).await);
    assert_eq!(fetched["type"], "NotificationType.received");
    assert_eq!(
        fetched["notificationStatus"],
        "NotificationStatus.delivered"
    );
    let list = json(&sender.send("notify:list").await);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id);
    assert_eq!(sender.send("notify:list:2024-10-25").await, "data:null");
    let ranged = json(&sender.send("notify:list:2024-10-24:2024-10-24:msg").await);
    assert_eq!(ranged[0]["id"], id);
    // A notification to another atSign is queued for the server-to-server engine.
    let other = data(&sender.send("notify:@bob:x.app@alice:v").await).to_string();
    assert_eq!(
        sender.send(&format!("notify:status:{other}")).await,
        "data:queued"
    );
    let all = sender.send("notify:all:@alice:hello.app@alice:v").await;
    assert!(all.starts_with("data: {\"@alice\":"), "{all}");
    assert_eq!(
        sender.send(&format!("notify:remove:{id}")).await,
        "data:success"
    );
    assert_eq!(
        sender.send(&format!("notify:status:{id}")).await,
        "data:null"
    );

    // Replay: a new monitor with epochMillis 0 gets stored notifications first.
    let mut replay = server.owner().await;
    replay.write(b"monitor:0 hello\n").await;
    let line = replay.read_line().await;
    assert!(
        line.contains("hello.app@alice") && line.contains("\"expiresAt\""),
        "{line}"
    );
    server.stop().await;
}

#[tokio::test]
async fn stats_config_info() {
    let server = TestServer::start().await;
    let mut c = server.owner().await;
    let all = c.send("stats").await;
    assert!(all.starts_with("data: [{\"id\":\"1\""), "{all}");
    let parsed: Value = serde_json::from_str(&all["data: ".len()..]).unwrap();
    assert_eq!(parsed.as_array().unwrap().len(), 15);
    assert_eq!(parsed[6]["value"], "3.0.52");
    let s15 = c.send("stats:15:signing").await;
    assert!(s15.contains("signing_publickey@alice"), "{s15}");

    assert_eq!(c.send("config:block:show").await, "data:null");
    assert_eq!(
        c.send("config:block:add:@eve @mallory @alice").await,
        "data:success"
    );
    assert_eq!(
        c.send("config:block:show").await,
        r#"data:["@eve","@mallory"]"#
    );
    assert_eq!(c.send("config:block:remove:@mallory").await, "data:success");
    assert_eq!(
        c.send("config:set:inboundMaxLimit=3").await,
        "data:testing mode disabled by default"
    );
    // A blocked atSign is refused with AT0013 and the connection closes.
    let mut eve = server.connect().await;
    let r = eve.send("from:@eve").await;
    assert_eq!(code(&r), "AT0013");
    assert!(eve.closed().await);

    let mut anon = server.connect().await;
    let info = json(&anon.send("info").await);
    assert_eq!(info["version"], "3.0.52");
    assert!(info["uptimeAsWords"].as_str().unwrap().contains("seconds"));
    let brief = json(&anon.send("info:brief").await);
    assert!(brief["uptimeAsMillis"].is_number());
    server.stop().await;
}

#[tokio::test]
async fn json_errors_for_new_clients() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    c.send(r#"from:@alice:clientConfig:{"version":"3.0.60"}"#)
        .await;
    let r = c.send("cram:00").await;
    assert!(r.starts_with(r#"error:{"errorCode":"AT0401""#), "{r}");
    server.stop().await;
}

#[tokio::test]
async fn apkam_enrollment_otp_approve_and_namespace_restriction() {
    let server = TestServer::start().await;
    // First device onboards with CRAM + enroll:request (auto-approved, __manage + *).
    let mut first = server.owner().await;
    let first_keys = keys::rsa_keypair();
    let r = json(&first.send(&format!(
        r#"enroll:request:{{"appName":"wavi","deviceName":"phone","apkamPublicKey":"{}","encryptedDefaultEncryptionPrivateKey":"ZW5j","encryptedDefaultSelfEncryptionKey":"c2Vs"}}"#,
        first_keys.public
    )).await);
    assert_eq!(r["status"], "approved");
    let first_id = r["enrollmentId"].as_str().unwrap().to_string();
    let mut m = server.connect().await;
    assert_eq!(
        m.pkam(&first_keys.private, Some(&first_id)).await,
        "data:success"
    );
    assert_eq!(
        m.send(&format!(
            "keys:get:keyName:{first_id}.default_enc_private_key.__manage@alice"
        ))
        .await,
        r#"data:{"value":"ZW5j"}"#
    );
    let mut selfmon = server.connect().await;
    selfmon.pkam(&first_keys.private, Some(&first_id)).await;
    selfmon.write(b"monitor:selfNotifications\n").await;

    // The manager issues an OTP; a new device requests access to namespace buzz only.
    let otp = data(&m.send("otp:get").await).to_string();
    assert_eq!(otp.len(), 6);
    let device = keys::rsa_keypair();
    let mut newdev = server.connect().await;
    let bad = newdev.send(&format!(
        r#"enroll:request:{{"appName":"buzz","deviceName":"pixel","namespaces":{{"buzz":"rw"}},"otp":"WRONG1","apkamPublicKey":"{}","encryptedAPKAMSymmetricKey":"a2V5"}}"#,
        device.public
    )).await;
    assert_eq!(code(&bad), "AT0011");
    let req = json(&newdev.send(&format!(
        r#"enroll:request:{{"appName":"buzz","deviceName":"pixel","namespaces":{{"buzz":"rw"}},"otp":"{otp}","apkamPublicKey":"{}","encryptedAPKAMSymmetricKey":"a2V5"}}"#,
        device.public
    )).await);
    assert_eq!(req["status"], "pending");
    let id = req["enrollmentId"].as_str().unwrap().to_string();
    // The OTP is single-use.
    let again = newdev.send(&format!(
        r#"enroll:request:{{"appName":"x","deviceName":"y","namespaces":{{"x":"r"}},"otp":"{otp}","apkamPublicKey":"k","encryptedAPKAMSymmetricKey":"a2V5"}}"#
    )).await;
    assert_eq!(code(&again), "AT0011");
    // The manager's self-notification monitor hears about the request.
    let line = selfmon.read_line().await;
    assert!(
        line.contains(&format!("{id}.new.enrollments.__manage")),
        "{line}"
    );

    // Pending enrollment cannot authenticate.
    let mut early = server.connect().await;
    let pending = early.pkam(&device.private, Some(&id)).await;
    assert!(pending.starts_with("error:AT0026:"), "{pending}");

    let list = json(
        &m.send(r#"enroll:list:{"enrollmentStatusFilter":["pending"]}"#)
            .await,
    );
    assert_eq!(
        list[format!("{id}.new.enrollments.__manage@alice")]["status"],
        "pending"
    );
    let approved = json(&m.send(&format!(
        r#"enroll:approve:{{"enrollmentId":"{id}","encryptedDefaultEncryptionPrivateKey":"ZQ==","encryptedDefaultSelfEncryptionKey":"cw=="}}"#
    )).await);
    assert_eq!(approved["status"], "approved");

    // The new device authenticates and is confined to buzz.
    let mut dev = server.connect().await;
    assert_eq!(dev.pkam(&device.private, Some(&id)).await, "data:success");
    assert!(data(&dev.send("update:note.buzz@alice hi").await)
        .parse::<i64>()
        .is_ok());
    assert_eq!(dev.send("llookup:note.buzz@alice").await, "data:hi");
    m.send("update:secret.wavi@alice s").await;
    assert_eq!(code(&dev.send("llookup:secret.wavi@alice").await), "AT0009");
    assert_eq!(code(&dev.send("update:x.wavi@alice 1").await), "AT0009");
    assert_eq!(code(&dev.send("delete:secret.wavi@alice").await), "AT0009");
    let seen: Vec<String> = serde_json::from_value(json(&dev.send("scan").await)).unwrap();
    assert!(seen.contains(&"note.buzz@alice".to_string()));
    assert!(
        !seen
            .iter()
            .any(|k| k.contains("wavi") && !k.starts_with("public:")),
        "{seen:?}"
    );
    // Nor replace the legacy PKAM key.
    assert_eq!(
        code(&dev.send("update:privatekey:at_pkam_publickey x").await),
        "AT0009"
    );
    // It may not manage enrollments; enroll:list shows it its own record only (as the
    // reference does), and approving needs __manage.
    let own: serde_json::Map<String, Value> =
        serde_json::from_value(json(&dev.send("enroll:list").await)).unwrap();
    assert_eq!(
        own.keys().collect::<Vec<_>>(),
        [&format!("{id}.new.enrollments.__manage@alice")]
    );
    assert_eq!(
        code(
            &dev.send(&format!(
                r#"enroll:approve:{{"enrollmentId":"{first_id}"}}"#
            ))
            .await
        ),
        "AT0011"
    );

    // Revoke: its live connection is dropped and PKAM is refused.
    let revoked = json(
        &m.send(&format!(r#"enroll:revoke:{{"enrollmentId":"{id}"}}"#))
            .await,
    );
    assert_eq!(revoked["status"], "revoked");
    assert!(dev.closed().await);
    let mut after = server.connect().await;
    assert!(after
        .pkam(&device.private, Some(&id))
        .await
        .starts_with("error:AT0027:"));
    let deleted = json(
        &m.send(&format!(r#"enroll:delete:{{"enrollmentId":"{id}"}}"#))
            .await,
    );
    assert_eq!(deleted["status"], "deleted");
    // Revoking one's own enrollment needs force.
    assert!(m
        .send(&format!(r#"enroll:revoke:{{"enrollmentId":"{first_id}"}}"#))
        .await
        .starts_with("error:AT0031:"));
    server.stop().await;
}

#[tokio::test]
async fn ecc_and_sha512_pkam() {
    use at_protocol::crypto::{HashingAlgo, PkamSigner, RsaKeyPair};
    let server = TestServer::start().await;
    let mut c = server.owner().await;
    // RSA with SHA-512.
    let rsa = RsaKeyPair::generate().unwrap();
    c.send(&format!(
        "update:privatekey:at_pkam_publickey {}",
        rsa.public_b64().unwrap()
    ))
    .await;
    let mut d = server.connect().await;
    let ch = d.send("from:@alice").await;
    let sig =
        PkamSigner::rsa(rsa.private_key().clone()).sign(HashingAlgo::Sha512, data(&ch).as_bytes());
    assert_eq!(
        d.send(&format!(
            "pkam:signingAlgo:rsa2048:hashingAlgo:sha512:{sig}"
        ))
        .await,
        "data:success"
    );
    // ECC secp256r1 (hex public key, base64 of the ASCII compact hex signature).
    let ecc = PkamSigner::generate_ecc();
    let pk = ecc.public_key().to_encoded().unwrap();
    c.send(&format!("update:privatekey:at_pkam_publickey {pk}"))
        .await;
    let mut e = server.connect().await;
    let ch = e.send("from:@alice").await;
    let sig = ecc.sign(HashingAlgo::Sha256, data(&ch).as_bytes());
    assert_eq!(
        e.send(&format!(
            "pkam:signingAlgo:ecc_secp256r1:hashingAlgo:sha256:{sig}"
        ))
        .await,
        "data:success"
    );
    // A signature over another challenge fails.
    let mut f = server.connect().await;
    f.send("from:@alice").await;
    assert!(f
        .send(&format!("pkam:signingAlgo:ecc_secp256r1:{sig}"))
        .await
        .starts_with("error:AT0401"));
    server.stop().await;
}

#[tokio::test]
async fn failed_auth_is_throttled_per_connection_and_address() {
    let server = TestServer::start_with(|c| {
        c.limits.auth_failures_per_connection = 3;
        c.limits.auth_failures_per_address = 5;
    })
    .await;
    let mut c = server.connect().await;
    for _ in 0..2 {
        c.send("from:@alice").await;
        assert_eq!(code(&c.send("cram:00").await), "AT0401");
    }
    c.send("from:@alice").await;
    assert_eq!(code(&c.send("cram:00").await), "AT0401");
    assert!(c.closed().await, "third failure closes the connection");
    let mut d = server.connect().await;
    d.send("from:@alice").await;
    d.send("cram:00").await;
    d.send("from:@alice").await;
    d.send("cram:00").await;
    d.send("from:@alice").await;
    // The address is now over its budget: even the right secret is refused for a while.
    assert_eq!(code(&d.send("cram:00").await), "AT0028");
    server.clock.advance(301_000);
    let mut e: Client = server.connect().await;
    e.cram(SECRET).await;
    let _ = ATSIGN;
    server.stop().await;
}
