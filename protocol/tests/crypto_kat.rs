//! Known-answer tests against vectors made by an independent implementation (Python `cryptography`,
//! see scripts/gen_crypto_fixtures.py), and the reverse direction: Rust-made signatures and `.atKeys`
//! written to `rust_made.json` for that script's `verify` mode.

use std::path::PathBuf;

use at_protocol::crypto::{
    cram_digest, pub_key_cs, rsa_decrypt, rsa_encrypt, sign_data, verify_data_signature, AesKey,
    AtKeys, AtKeysFile, CryptoError, EccSigningKey, HashingAlgo, Iv, PkamPublicKey, PkamSigner,
    RsaKeyPair, SigningAlgo,
};
use serde_json::{json, Value};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/crypto")
}

fn vectors() -> Value {
    let text = std::fs::read_to_string(fixtures_dir().join("python_vectors.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

fn items(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap()
}

#[test]
fn cram_digest_matches_python() {
    let v = vectors();
    let cases = items(&v["cram"]);
    assert!(cases.len() >= 4);
    for case in cases {
        assert_eq!(
            cram_digest(s(&case["secret"]), s(&case["challenge"])),
            s(&case["digest"])
        );
    }
}

#[test]
fn rsa_key_encodings_round_trip_byte_for_byte() {
    let v = vectors();
    let pair = RsaKeyPair::from_private_b64(s(&v["rsa_key"]["private"])).unwrap();
    assert_eq!(pair.private_b64().unwrap(), s(&v["rsa_key"]["private"]));
    assert_eq!(pair.public_b64().unwrap(), s(&v["rsa_key"]["public"]));
    // Debug output never carries key material.
    assert_eq!(format!("{pair:?}"), "RsaKeyPair { bits: 2048, .. }");
}

#[test]
fn rsa_pkcs1v15_decrypts_python_ciphertexts() {
    let v = vectors();
    let pair = RsaKeyPair::from_private_b64(s(&v["rsa_key"]["private"])).unwrap();
    for case in items(&v["rsa_decrypt"]) {
        assert_eq!(
            rsa_decrypt(pair.private_key(), s(&case["ciphertext"])).unwrap(),
            s(&case["plaintext"])
        );
    }
    // Our own envelope round-trips with the same key, and a corrupted one is an error.
    let sealed = rsa_encrypt(&pair.public_key(), "an AES key as base64 text").unwrap();
    assert_eq!(
        rsa_decrypt(pair.private_key(), &sealed).unwrap(),
        "an AES key as base64 text"
    );
    assert!(rsa_decrypt(pair.private_key(), "AAAA").is_err());
}

#[test]
fn aes_ctr_decrypts_and_reencrypts_python_vectors() {
    let v = vectors();
    let cases = items(&v["aes_ctr"]);
    assert!(
        cases.iter().any(|c| c["iv"].is_null()),
        "zero-IV case present"
    );
    for case in cases {
        let key = AesKey::from_b64(s(&case["key"])).unwrap();
        let iv = Iv::from_iv_nonce(case["iv"].as_str()).unwrap();
        assert_eq!(
            key.decrypt_b64(&iv, s(&case["ciphertext"])).unwrap(),
            s(&case["plaintext"])
        );
        // CTR with fixed key and IV is deterministic, so encryption must reproduce Python's bytes.
        assert_eq!(
            key.encrypt_b64(&iv, s(&case["plaintext"])),
            s(&case["ciphertext"])
        );
    }
    // The wrong IV garbles the padding or the text.
    let case = &cases[0];
    let key = AesKey::from_b64(s(&case["key"])).unwrap();
    let wrong = key.decrypt_b64(&Iv::zero(), s(&case["ciphertext"]));
    assert_ne!(wrong.ok().as_deref(), Some(s(&case["plaintext"])));
}

#[test]
fn rsa_pkam_signatures_from_python_verify() {
    let v = vectors();
    let public =
        PkamPublicKey::from_encoded(SigningAlgo::Rsa2048, s(&v["rsa_key"]["public"])).unwrap();
    let cases = items(&v["rsa_signatures"]);
    assert_eq!(cases.len(), 6);
    for case in cases {
        let hashing: HashingAlgo = s(&case["hashing"]).parse().unwrap();
        let challenge = s(&case["challenge"]).as_bytes();
        public
            .verify(hashing, challenge, s(&case["signature"]))
            .unwrap();
        // The other hash, or another challenge, must fail.
        let other = match hashing {
            HashingAlgo::Sha256 => HashingAlgo::Sha512,
            HashingAlgo::Sha512 => HashingAlgo::Sha256,
        };
        assert!(matches!(
            public.verify(other, challenge, s(&case["signature"])),
            Err(CryptoError::BadSignature)
        ));
        assert!(public.verify(hashing, b"x", s(&case["signature"])).is_err());
    }
    // PKCS#1 v1.5 signing is deterministic: Rust reproduces Python's exact signature.
    let signer =
        PkamSigner::from_encoded(SigningAlgo::Rsa2048, s(&v["rsa_key"]["private"])).unwrap();
    for case in cases {
        let hashing: HashingAlgo = s(&case["hashing"]).parse().unwrap();
        assert_eq!(
            signer.sign(hashing, s(&case["challenge"]).as_bytes()),
            s(&case["signature"])
        );
    }
}

#[test]
fn server_data_signature_is_rsa_sha256() {
    let v = vectors();
    let pair = RsaKeyPair::from_private_b64(s(&v["rsa_key"]["private"])).unwrap();
    let case = items(&v["rsa_signatures"])
        .iter()
        .find(|c| c["hashing"] == "sha256")
        .unwrap();
    let challenge = s(&case["challenge"]).as_bytes();
    assert_eq!(
        sign_data(pair.private_key(), challenge),
        s(&case["signature"])
    );
    verify_data_signature(&pair.public_key(), challenge, s(&case["signature"])).unwrap();
    assert!(verify_data_signature(&pair.public_key(), b"tampered", s(&case["signature"])).is_err());
}

#[test]
fn ecc_pkam_signatures_from_python_verify() {
    let v = vectors();
    let public =
        PkamPublicKey::from_encoded(SigningAlgo::EccSecp256r1, s(&v["ecc_key"]["public_hex"]))
            .unwrap();
    // Our encoding of the parsed point is Python's uncompressed X9.62 hex.
    assert_eq!(public.to_encoded().unwrap(), s(&v["ecc_key"]["public_hex"]));
    let signer =
        PkamSigner::from_encoded(SigningAlgo::EccSecp256r1, s(&v["ecc_key"]["private_hex"]))
            .unwrap();
    assert_eq!(signer.public_key(), public);
    for case in items(&v["ecc_signatures"]) {
        let challenge = s(&case["challenge"]).as_bytes();
        // hashingAlgo is ignored for ECC: either value verifies.
        public
            .verify(HashingAlgo::Sha256, challenge, s(&case["signature"]))
            .unwrap();
        public
            .verify(HashingAlgo::Sha512, challenge, s(&case["signature"]))
            .unwrap();
        assert!(public
            .verify(HashingAlgo::Sha256, b"other", s(&case["signature"]))
            .is_err());
    }
}

#[test]
fn pub_key_cs_matches_python() {
    let v = vectors();
    assert_eq!(
        pub_key_cs(s(&v["pub_key_cs"]["public"])),
        s(&v["pub_key_cs"]["md5"])
    );
}

#[test]
fn atkeys_file_from_python_decrypts() {
    let v = vectors();
    let case = &v["atkeys"];
    let file = AtKeysFile::from_json(&case["file"].to_string()).unwrap();
    let keys = file.decrypt().unwrap();
    assert_eq!(keys.pkam.public_b64().unwrap(), s(&case["pkam_public"]));
    assert_eq!(keys.pkam.private_b64().unwrap(), s(&case["pkam_private"]));
    assert_eq!(
        keys.encryption.public_b64().unwrap(),
        s(&case["encrypt_public"])
    );
    assert_eq!(
        keys.encryption.private_b64().unwrap(),
        s(&case["encrypt_private"])
    );
    assert_eq!(keys.apkam_symmetric_key, None);
    // Unknown fields survive a rewrite; re-encryption reproduces the same ciphertexts (zero IV).
    assert_eq!(file.other.get("@alice"), case["file"].get("@alice"));
    let rewritten = keys.to_file(Some("@alice")).unwrap();
    assert_eq!(rewritten, file);
    let reparsed = AtKeysFile::from_json(&file.to_json().unwrap()).unwrap();
    assert_eq!(reparsed, file);
}

#[test]
fn atkeys_file_round_trips_through_disk_with_apkam_fields() {
    let mut keys = AtKeys::generate().unwrap();
    keys.apkam_symmetric_key = Some(AesKey::generate());
    keys.enrollment_id = Some("0d9e5a7c-1111-4222-8333-944455556666".into());
    let dir = std::env::temp_dir().join(format!("atfleet-kat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(AtKeysFile::file_name("@alice"));
    keys.to_file(Some("@alice")).unwrap().save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("{\n    \"selfEncryptionKey\""),
        "atsdk layout: {text}"
    );
    let loaded = AtKeysFile::load(&path).unwrap();
    assert_eq!(
        loaded.enrollment_id.as_deref(),
        keys.enrollment_id.as_deref()
    );
    assert_eq!(loaded.decrypt().unwrap(), keys);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A file whose public half does not match its private half is refused.
    let mut broken = keys.to_file(None).unwrap();
    broken.aes_pkam_public_key = broken.aes_encrypt_public_key.clone();
    assert!(matches!(broken.decrypt(), Err(CryptoError::KeysFile(_))));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Builds the deterministic Rust-made vectors that `gen_crypto_fixtures.py verify` checks.
fn rust_made(v: &Value) -> Value {
    let challenges: Vec<&str> = items(&v["rsa_signatures"])
        .iter()
        .map(|c| s(&c["challenge"]))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let rsa = PkamSigner::from_encoded(SigningAlgo::Rsa2048, s(&v["rsa_key"]["private"])).unwrap();
    let ecc = PkamSigner::from_encoded(SigningAlgo::EccSecp256r1, s(&v["ecc_key"]["private_hex"]))
        .unwrap();
    // A Rust-side ECC key from a fixed scalar, so its hex point encoding is checked by Python too.
    let own_ecc = PkamSigner::Ecc(EccSigningKey::from_slice(&[0x5a; 32]).unwrap());
    let mut rsa_sigs = Vec::new();
    for c in &challenges {
        for hashing in [HashingAlgo::Sha256, HashingAlgo::Sha512] {
            rsa_sigs.push(json!({"challenge": c, "hashing": hashing.wire_name(),
                "signature": rsa.sign(hashing, c.as_bytes())}));
        }
    }
    let sign_all = |signer: &PkamSigner| -> Vec<Value> {
        challenges
            .iter()
            .map(|c| json!({"challenge": c, "signature": signer.sign(HashingAlgo::Sha256, c.as_bytes())}))
            .collect()
    };
    let key = AesKey::from_bytes(&[7u8; 32]).unwrap();
    let iv = Iv::from_bytes(&[0xa5; 16]).unwrap();
    let aes: Vec<Value> = [
        "",
        "phone +1 555 0100",
        "ünïcode ✓ across more than one block",
    ]
    .iter()
    .flat_map(|text| {
        [
            json!({"key": key.to_b64(), "iv": iv.to_b64(), "plaintext": text,
                    "ciphertext": key.encrypt_b64(&iv, text)}),
            json!({"key": key.to_b64(), "iv": null, "plaintext": text,
                    "ciphertext": key.encrypt_b64(&Iv::zero(), text)}),
        ]
    })
    .collect();
    let python_keys = AtKeysFile::from_json(&v["atkeys"]["file"].to_string())
        .unwrap()
        .decrypt()
        .unwrap();
    let keys = AtKeys {
        self_encryption_key: AesKey::from_bytes(&[0x3c; 32]).unwrap(),
        ..python_keys
    };
    json!({
        "rsa_signatures": rsa_sigs,
        "ecc_signatures": sign_all(&ecc),
        "ecc_own": {"public_hex": own_ecc.public_key().to_encoded().unwrap(), "signatures": sign_all(&own_ecc)},
        "aes_ctr": aes,
        "atkeys": {
            "file": serde_json::to_value(keys.to_file(Some("@alice")).unwrap()).unwrap(),
            "pkam_public": keys.pkam.public_b64().unwrap(),
            "pkam_private": keys.pkam.private_b64().unwrap(),
            "encrypt_public": keys.encryption.public_b64().unwrap(),
            "encrypt_private": keys.encryption.private_b64().unwrap(),
        },
    })
}

/// Rust → Python direction. The output is deterministic; it must equal the committed file, which
/// `gen_crypto_fixtures.py verify` checked with Python. A missing file is written (then run the script).
#[test]
fn rust_made_vectors_match_the_python_verified_file() {
    let v = vectors();
    let made = rust_made(&v);
    // Rust verifies its own output too, so this test means something even before Python has run.
    for case in items(&made["ecc_signatures"]) {
        PkamPublicKey::from_encoded(SigningAlgo::EccSecp256r1, s(&v["ecc_key"]["public_hex"]))
            .unwrap()
            .verify(
                HashingAlgo::Sha256,
                s(&case["challenge"]).as_bytes(),
                s(&case["signature"]),
            )
            .unwrap();
    }
    let path = fixtures_dir().join("rust_made.json");
    let text = serde_json::to_string_pretty(&made).unwrap() + "\n";
    match std::fs::read_to_string(&path) {
        Ok(committed) if std::env::var_os("ATFLEET_UPDATE_FIXTURES").is_none() => {
            assert_eq!(
                committed, text,
                "Rust crypto output changed; rerun with ATFLEET_UPDATE_FIXTURES=1 and then \
                 scripts/gen_crypto_fixtures.py verify"
            );
        }
        _ => std::fs::write(&path, text).unwrap(),
    }
    // Where the project's Python environment is at hand (CI sets ATFLEET_PYTHON from
    // scripts/python-env), let Python and atsdk check the file right now as well.
    if let Some(python) = std::env::var_os("ATFLEET_PYTHON") {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/gen_crypto_fixtures.py");
        let out = std::process::Command::new(python)
            .arg(script)
            .arg("verify")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python verify failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(" passed, 0 failed"));
    }
}
