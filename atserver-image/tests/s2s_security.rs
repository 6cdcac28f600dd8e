//! Server-to-server security (acceptance 3), through the protocol only: the peer certificate must
//! name the host the atDirectory publishes for the claimed atSign; a bad pol signature is refused;
//! a pol-authenticated peer cannot deliver notifications for keys another atSign owns (nothing
//! is cached); notification status needs authentication.

#[path = "common/fleet.rs"]
mod fleet;

use at_protocol::client::{AtConnection, PolChallenge};
use at_protocol::crypto::{private_key_from_b64, sign_data};
use fleet::{code, json, send, Fleet, Node};

/// Signs `challenge` with @carol's server signing key, read by @carol's owner.
async fn sign_as(owner: &mut AtConnection, node: &Node, challenge: &str) -> String {
    let name = node.atsign.name();
    let reply = send(owner, &format!("llookup:@{name}:signing_privatekey@{name}")).await;
    let key = private_key_from_b64(reply.strip_prefix("data:").expect("signing key")).unwrap();
    sign_data(&key, challenge.as_bytes())
}

/// Publishes `signature` where the verifier looks for it (`public:<sessionId>@carol`).
async fn publish(owner: &mut AtConnection, challenge: &PolChallenge, signature: &str) {
    let reply = send(
        owner,
        &format!("update:ttl:60000:{} {signature}", challenge.signature_key()),
    )
    .await;
    assert!(reply.starts_with("data:"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_are_checked_and_cannot_poison_caches() {
    let fleet = Fleet::start().await;
    let alice = fleet.start_node("@alice", "127.0.0.2").await;
    let bob = fleet.start_node("@bob", "127.0.0.3").await;
    let carol = fleet.start_node("@carol", "127.0.0.4").await;
    let mut carol_owner = fleet.owner(&carol).await;
    let carol_sign = carol.atsign.clone();

    // A certificate for @carol's host does not make its holder @alice.
    let mut c = fleet.connect(&bob, Some(&carol.leaf)).await;
    let refused = send(&mut c, "from:@alice").await;
    assert_eq!(code(&refused), "AT0401", "{refused}");
    assert!(
        refused.contains("Certificate Verification Failed"),
        "{refused}"
    );
    // A certificate for an unregistered host, and no certificate at all, are refused too.
    let stranger = fleet.pki.leaf("127.0.0.9");
    let mut s = fleet.connect(&bob, Some(&stranger)).await;
    assert_eq!(code(&send(&mut s, "from:@carol").await), "AT0401");
    let mut anon = fleet.connect(&bob, None).await;
    assert_eq!(code(&send(&mut anon, "from:@carol").await), "AT0401");
    // `to:` (the newer peers' first verb) names the atSign they meant to reach.
    let keys = json(&send(&mut anon, "to:@bob").await);
    assert!(
        keys["signing_publickey"]
            .as_str()
            .is_some_and(|k| !k.is_empty()),
        "{keys}"
    );
    assert_eq!(code(&send(&mut anon, "to:@alice").await), "AT0009");

    // The matching certificate gets a proof challenge; a wrong signature fails pol.
    let challenge = c.from_peer(&carol_sign).await.expect("proof challenge");
    let wrong = sign_as(&mut carol_owner, &carol, "not the challenge").await;
    publish(&mut carol_owner, &challenge, &wrong).await;
    let err = c.pol(&carol_sign).await.expect_err("bad signature refused");
    assert_eq!(
        err.server_code().map(|c| c.as_str()),
        Some("AT0401"),
        "{err}"
    );

    // A correct signature authenticates the connection as @carol.
    let mut p = fleet.connect(&bob, Some(&carol.leaf)).await;
    let challenge = p.from_peer(&carol_sign).await.expect("proof challenge");
    let good = sign_as(&mut carol_owner, &carol, &challenge.challenge).await;
    publish(&mut carol_owner, &challenge, &good).await;
    p.pol(&carol_sign).await.expect("pol");

    // A notification for a key @alice owns is rejected, and nothing is cached.
    let forged = send(
        &mut p,
        "notify:id:forged-1:update:messageType:key:notifier:SYSTEM:ttln:60000:ttr:3600:ccd:true:isEncrypted:false:@bob:phone.wavi@alice:evil",
    )
    .await;
    assert_eq!(code(&forged), "AT0009", "{forged}");
    // @carol's own key goes through.
    let legit = send(
        &mut p,
        "notify:id:legit-1:update:messageType:key:notifier:SYSTEM:ttln:60000:ttr:3600:ccd:true:isEncrypted:false:@bob:hello.app@carol:hi",
    )
    .await;
    assert_eq!(legit, "data:success");
    // Delivery to another recipient through @bob's server is refused as well.
    let misrouted = send(
        &mut p,
        "notify:id:forged-2:update:messageType:key:ttr:3600:isEncrypted:false:@alice:hello.app@carol:hi",
    )
    .await;
    assert_eq!(code(&misrouted), "AT0009", "{misrouted}");

    let mut b = fleet.owner(&bob).await;
    // Ids of @bob's own notifications cannot be taken over by a peer.
    assert_eq!(
        send(&mut b, "notify:id:bobs-own:@bob:self.app@bob:1").await,
        "data:bobs-own"
    );
    let taken = send(
        &mut p,
        "notify:id:bobs-own:update:messageType:key:isEncrypted:false:@bob:x.app@carol:hi",
    )
    .await;
    assert_eq!(code(&taken), "AT0009", "{taken}");
    assert_eq!(
        send(&mut b, "notify:status:bobs-own").await,
        "data:delivered"
    );
    assert_eq!(
        code(&send(&mut b, "llookup:cached:@bob:phone.wavi@alice").await),
        "AT0015"
    );
    assert_eq!(
        send(&mut b, "llookup:cached:@bob:hello.app@carol").await,
        "data:hi"
    );
    let listed = json(&send(&mut b, "notify:list").await);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["legit-1", "bobs-own"]);

    // A peer lists what @bob sent to it, nothing else.
    send(&mut b, "notify:id:to-carol:@carol:n.app@bob:1").await;
    send(&mut b, "notify:id:to-alice:@alice:n.app@bob:1").await;
    let sent = json(&send(&mut p, "notify:list").await);
    let sent: Vec<&str> = sent
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    assert_eq!(sent, vec!["to-carol"]);

    // The peer view: @carol reads only what @bob shared with @carol.
    send(&mut b, "update:@carol:note.app@bob for-carol").await;
    send(&mut b, "update:@alice:note2.app@bob for-alice").await;
    assert_eq!(send(&mut p, "lookup:note.app@bob").await, "data:for-carol");
    assert_eq!(code(&send(&mut p, "lookup:note2.app@bob").await), "AT0015");
    assert_eq!(
        json(&send(&mut p, "scan").await),
        serde_json::json!(["note.app@bob"])
    );

    // Notification status and notify:all need an authenticated owner.
    let mut a = fleet.owner(&alice).await;
    let id = send(&mut a, "notify:id:status-1:@bob:ping.app@alice:x").await;
    assert_eq!(id, "data:status-1");
    let mut anon = fleet.connect(&alice, None).await;
    assert_eq!(
        code(&send(&mut anon, "notify:status:status-1").await),
        "AT0401"
    );
    assert_eq!(
        code(&send(&mut anon, "notify:all:@bob:ping.app@alice:x").await),
        "AT0401"
    );
    fleet::poll_until(&mut a, "notify:status:status-1", "data:delivered").await;
}
