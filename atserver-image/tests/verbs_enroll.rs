//! `enroll:update` (self key rotation with proof of possession, metadata, `_apsk`) and
//! `enroll:listns:<namespace>` over TLS, with the reference's rules.

mod common;

use at_protocol::crypto::{HashingAlgo, PkamSigner};
use common::{data, json, keys, Client, TestServer, ATSIGN};

fn code(reply: &str) -> &str {
    reply
        .strip_prefix("error:")
        .and_then(|r| r.get(..6))
        .unwrap_or_else(|| panic!("expected an error, got {reply}"))
}

/// PKAM bound to `enrollment` with any signer (RSA or ML-DSA).
async fn apkam(c: &mut Client, signer: &PkamSigner, enrollment: &str) -> String {
    let challenge = data(&c.send(&format!("from:{ATSIGN}")).await).to_string();
    let sig = signer.sign(HashingAlgo::Sha256, challenge.as_bytes());
    c.send(&format!(
        "pkam:signingAlgo:{}:enrollmentId:{enrollment}:{sig}",
        signer.algo()
    ))
    .await
}

/// The first device: CRAM, then an auto-approved enrollment (`__manage` and `*`).
async fn first_device(server: &TestServer) -> (String, PkamSigner) {
    let mut owner = server.owner().await;
    let pair = keys::rsa_keypair();
    let r = json(&owner.send(&format!(
        r#"enroll:request:{{"appName":"wavi","deviceName":"phone","apkamPublicKey":"{}","encryptedDefaultEncryptionPrivateKey":"ZW5j","encryptedDefaultSelfEncryptionKey":"c2Vs"}}"#,
        pair.public
    )).await);
    assert_eq!(r["status"], "approved");
    let signer =
        PkamSigner::from_encoded(at_protocol::crypto::SigningAlgo::Rsa2048, &pair.private).unwrap();
    (r["enrollmentId"].as_str().unwrap().to_string(), signer)
}

fn update_cmd(id: &str, extra: &str) -> String {
    format!(r#"enroll:update:{{"enrollmentId":"{id}",{extra}}}"#)
}

#[tokio::test]
async fn enroll_update_rotates_the_own_key_with_proof_of_possession() {
    let server = TestServer::start().await;
    let (id, old) = first_device(&server).await;
    let mut device = server.connect().await;
    assert_eq!(apkam(&mut device, &old, &id).await, "data:success");

    // Rotate to an ML-DSA-65 key; the signature proves the sender holds it.
    let new = PkamSigner::generate_mldsa();
    let new_public = new.public_key().to_encoded().unwrap();
    let proof_text = format!("{id}|{new_public}|mldsa65");
    let proof = new.sign(HashingAlgo::Sha256, proof_text.as_bytes());
    // A signature by another key, or none, is refused and changes nothing.
    let impostor = PkamSigner::generate_mldsa().sign(HashingAlgo::Sha256, proof_text.as_bytes());
    for extra in [
        format!(
            r#""apkamPublicKey":"{new_public}","signingAlgo":"mldsa65","apkamPublicKeySignature":"{impostor}""#
        ),
        format!(r#""apkamPublicKey":"{new_public}","signingAlgo":"mldsa65""#),
    ] {
        assert_eq!(code(&device.send(&update_cmd(&id, &extra)).await), "AT0011");
    }
    let mut still_old = server.connect().await;
    assert_eq!(apkam(&mut still_old, &old, &id).await, "data:success");

    let done = json(&device.send(&update_cmd(&id, &format!(
        r#""apkamPublicKey":"{new_public}","signingAlgo":"mldsa65","apkamPublicKeySignature":"{proof}""#
    ))).await);
    assert_eq!(
        done,
        serde_json::json!({"enrollmentId": id, "status": "approved"})
    );
    let mut with_old = server.connect().await;
    assert_eq!(code(&apkam(&mut with_old, &old, &id).await), "AT0401");
    let mut with_new = server.connect().await;
    assert_eq!(apkam(&mut with_new, &new, &id).await, "data:success");

    // Metadata merges per member; apskLegacy is published for peers to read.
    for extra in [
        r#""metadata":{"a":"1"}"#,
        r#""metadata":{"b":"2"},"apskLegacy":"c2lnbmluZw==""#,
    ] {
        assert_eq!(
            json(&with_new.send(&update_cmd(&id, extra)).await)["status"],
            "approved"
        );
    }
    let mut anon = server.connect().await;
    assert_eq!(
        anon.send(&format!("lookup:_apsk.{id}.a.__e@alice")).await,
        "data:c2lnbmluZw=="
    );
    let members = json(&with_new.send("enroll:listns:wavi").await);
    assert_eq!(
        members[0]["metadata"],
        serde_json::json!({"a": "1", "b": "2"})
    );

    // What the operation may never do, and who may not do it.
    assert_eq!(
        code(
            &with_new
                .send(&update_cmd(&id, r#""namespaces":{"x":"rw"}"#))
                .await
        ),
        "AT0022"
    );
    assert_eq!(
        code(
            &with_new
                .send(&format!(r#"enroll:update:{{"enrollmentId":"{id}"}}"#))
                .await
        ),
        "AT0022"
    );
    assert_eq!(
        code(
            &with_new
                .send(&update_cmd(&id, r#""signingAlgo":"rsa2048""#))
                .await
        ),
        "AT0022"
    );
    let mut owner = server.owner().await;
    assert_eq!(
        code(
            &owner
                .send(&update_cmd(&id, r#""metadata":{"c":"3"}"#))
                .await
        ),
        "AT0011"
    );
    let mut anon = server.connect().await;
    assert_eq!(
        code(&anon.send(&update_cmd(&id, r#""metadata":{"c":"3"}"#)).await),
        "AT0401"
    );
    server.stop().await;
}

#[tokio::test]
async fn enroll_listns_lists_the_enrollments_of_a_namespace() {
    let server = TestServer::start().await;
    let (manager_id, manager_key) = first_device(&server).await;
    let mut manager = server.connect().await;
    assert_eq!(
        apkam(&mut manager, &manager_key, &manager_id).await,
        "data:success"
    );

    // A second device asks for read access to buzz with an OTP; the manager approves.
    let otp = data(&manager.send("otp:get").await).to_string();
    let pair = keys::rsa_keypair();
    let mut newdev = server.connect().await;
    let req = json(&newdev.send(&format!(
        r#"enroll:request:{{"appName":"buzz","deviceName":"pixel","namespaces":{{"buzz":"r"}},"otp":"{otp}","apkamPublicKey":"{}","encryptedAPKAMSymmetricKey":"a2V5"}}"#,
        pair.public
    )).await);
    let buzz_id = req["enrollmentId"].as_str().unwrap().to_string();
    let approved = json(&manager.send(&format!(
        r#"enroll:approve:{{"enrollmentId":"{buzz_id}","encryptedDefaultEncryptionPrivateKey":"ZQ==","encryptedDefaultSelfEncryptionKey":"cw=="}}"#
    )).await);
    assert_eq!(approved["status"], "approved");

    let buzz = json(&manager.send("enroll:listns:buzz").await);
    let mut rows: Vec<(String, String)> = buzz
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["enrollmentId"].as_str().unwrap().to_string(),
                m["access"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    rows.sort();
    let mut want = vec![
        (manager_id.clone(), "rw".to_string()),
        (buzz_id.clone(), "r".to_string()),
    ];
    want.sort();
    assert_eq!(rows, want);
    // A sub-namespace matches by suffix.
    assert_eq!(
        json(&manager.send("enroll:listns:chat.buzz").await)
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let wavi = json(&manager.send("enroll:listns:wavi").await);
    assert_eq!(wavi.as_array().unwrap().len(), 1);
    assert_eq!(wavi[0]["enrollmentId"], manager_id.as_str());

    // The buzz device may list buzz but not wavi; a connection without an enrollment may not.
    let buzz_key =
        PkamSigner::from_encoded(at_protocol::crypto::SigningAlgo::Rsa2048, &pair.private).unwrap();
    let mut dev = server.connect().await;
    assert_eq!(apkam(&mut dev, &buzz_key, &buzz_id).await, "data:success");
    assert_eq!(
        json(&dev.send("enroll:listns:buzz").await)
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(code(&dev.send("enroll:listns:wavi").await), "AT0009");
    let mut owner = server.owner().await;
    assert_eq!(code(&owner.send("enroll:listns:buzz").await), "AT0401");
    assert_eq!(code(&manager.send("enroll:listns").await), "AT0022");
    server.stop().await;
}
