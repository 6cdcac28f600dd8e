//! AtConnection against a scripted TLS server: greeting, every prompt form, the three error shapes,
//! `data: ` replies, CRAM/PKAM/pol flows, timeouts and closes.

mod client_support;

use std::time::Duration;

use at_protocol::client::{AtConnection, ClientError};
use at_protocol::crypto::{HashingAlgo, PkamPublicKey, PkamSigner, SigningAlgo};
use at_protocol::{AtSign, ErrorCode, Reply};
use client_support::{serve, Pki};
use sha2::{Digest, Sha512};
use tokio::sync::mpsc;

fn alice() -> AtSign {
    AtSign::parse("@alice").unwrap()
}

#[tokio::test]
async fn prompts_errors_and_spaced_data() {
    let pki = Pki::new();
    let port = serve(&pki, |mut c| async move {
        c.send("@").await;
        let script = [
            ("noop:0", "data:ok\n@"),
            ("llookup:a@alice", "data:A value with spaces\n@alice@"),
            ("lookup:b@alice", "data:b\n@bob@"),
            ("stats", "data: [{\"id\":\"1\"}]\n@alice@"),
            ("notify:all:x", "data: {\"a\":1}\n@alice@"),
            (
                "llookup:missing@alice",
                "error:AT0015-key not found : missing@alice does not exist in keystore\n@alice@",
            ),
            (
                "pkam:enrollmentId:e1:sig",
                "error:AT0026:enrollment_id: e1 is pending\n@",
            ),
            (
                "llookup:json@alice",
                "error:{\"errorCode\":\"AT0015\",\"errorDescription\":\"key not found\"}\n@",
            ),
            ("null", "data:null\n@"),
        ];
        for (want, reply) in script {
            assert_eq!(c.line().await.as_deref(), Some(want));
            c.send(reply).await;
        }
        // A prompt cut by a record boundary: its tail arrives glued to the next reply.
        assert_eq!(c.line().await.as_deref(), Some("split"));
        c.send("data:first\n@al").await;
        assert_eq!(c.line().await.as_deref(), Some("after"));
        c.send("ice@data:second\n@alice@").await;
        // CRLF and a multi-record reply.
        assert_eq!(c.line().await.as_deref(), Some("big"));
        c.send(&format!("data:{}", "x".repeat(40_000))).await;
        c.send("\r\n@alice@").await;
        assert_eq!(c.line().await.as_deref(), Some("@exit"));
    })
    .await;

    let config = pki.client_config();
    let mut conn = AtConnection::connect_with_sni(&config, "127.0.0.1", port, "localhost")
        .await
        .unwrap();
    assert_eq!(conn.send("noop:0").await.unwrap(), Reply::Data("ok".into()));
    assert_eq!(
        conn.send("llookup:a@alice").await.unwrap(),
        Reply::Data("A value with spaces".into())
    );
    assert_eq!(conn.send_data("lookup:b@alice").await.unwrap(), "b");
    assert_eq!(
        conn.send("stats").await.unwrap(),
        Reply::Data(" [{\"id\":\"1\"}]".into())
    );
    assert_eq!(conn.send_data("notify:all:x").await.unwrap(), " {\"a\":1}");
    match conn.send("llookup:missing@alice").await.unwrap() {
        Reply::Error { code, message } => {
            assert_eq!(code, Some(ErrorCode::KeyNotFound));
            assert!(message.contains("does not exist"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    match conn.send("pkam:enrollmentId:e1:sig").await.unwrap() {
        Reply::Error { code, message } => {
            assert_eq!(code, Some(ErrorCode::ApkamAuthFailed));
            assert_eq!(message, "enrollment_id: e1 is pending");
        }
        other => panic!("{other:?}"),
    }
    let err = conn.send_data("llookup:json@alice").await.unwrap_err();
    assert_eq!(err.server_code(), Some(ErrorCode::KeyNotFound));
    assert_eq!(conn.send_raw("null").await.unwrap(), "data:null");
    assert_eq!(conn.send_data("split").await.unwrap(), "first");
    assert_eq!(conn.send_data("after").await.unwrap(), "second");
    assert_eq!(conn.send_data("big").await.unwrap(), "x".repeat(40_000));
    conn.close().await.unwrap();
}

#[tokio::test]
async fn cram_then_pkam_with_rsa_and_ecc() {
    let pki = Pki::new();
    let vectors: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/crypto/python_vectors.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let rsa_private = vectors["rsa_key"]["private"].as_str().unwrap().to_owned();
    let rsa_public = vectors["rsa_key"]["public"].as_str().unwrap().to_owned();
    let ecc = PkamSigner::generate_ecc();
    let ecc_public = ecc.public_key().to_encoded().unwrap();
    let mldsa = PkamSigner::generate_mldsa();
    let mldsa_public = mldsa.public_key().to_encoded().unwrap();
    let secret = "b26455a907582760ebf35bc4847de549";
    let (seen_tx, mut seen) = mpsc::unbounded_channel();

    let port = serve(&pki, move |mut c| {
        let (rsa_public, ecc_public, mldsa_public, seen_tx) = (
            rsa_public.clone(),
            ecc_public.clone(),
            mldsa_public.clone(),
            seen_tx.clone(),
        );
        async move {
            c.send("@").await;
            let mut challenge = String::new();
            let mut prompt = "@".to_owned();
            while let Some(line) = c.line().await {
                let reply = if line == "from:@alice" {
                    challenge = format!("_{}@alice:{}", "0a1b2c3d", uuid_like(line.len()));
                    format!("data:{challenge}")
                } else if let Some(digest) = line.strip_prefix("cram:") {
                    let want = hex::encode(Sha512::digest(format!("{secret}{challenge}")));
                    if digest == want {
                        prompt = "@alice@".into();
                        "data:success".into()
                    } else {
                        "error:AT0401-Exception: Authentication Failed".into()
                    }
                } else if let Some(rest) = line.strip_prefix("pkam:") {
                    seen_tx.send(line.clone()).unwrap();
                    let (algo, hashing, sig) = split_pkam(rest);
                    let key = match algo {
                        SigningAlgo::Rsa2048 => &rsa_public,
                        SigningAlgo::EccSecp256r1 => &ecc_public,
                        SigningAlgo::MlDsa65 => &mldsa_public,
                    };
                    let public = PkamPublicKey::from_encoded(algo, key).unwrap();
                    if public.verify(hashing, challenge.as_bytes(), sig).is_ok() {
                        prompt = "@alice@".into();
                        "data:success".into()
                    } else {
                        "error:AT0401-Exception: pkam authentication failed".into()
                    }
                } else {
                    "error:AT0003-Exception: invalid command".into()
                };
                c.send(&format!("{reply}\n{prompt}")).await;
            }
        }
    })
    .await;

    let config = pki.client_config();
    let mut conn = AtConnection::connect(&config, "127.0.0.1", port)
        .await
        .unwrap();
    let err = conn.authenticate_cram(&alice(), "wrong").await.unwrap_err();
    assert_eq!(err.server_code(), Some(ErrorCode::Unauthenticated));
    conn.authenticate_cram(&alice(), secret).await.unwrap();
    assert_eq!(conn.prompt().as_wire(), "@alice@");

    // Re-authenticating with PKAM on the same connection, as atsdk's onboarding does.
    let rsa = PkamSigner::from_encoded(SigningAlgo::Rsa2048, &rsa_private).unwrap();
    conn.authenticate_pkam(&alice(), &rsa, None).await.unwrap();
    assert_eq!(
        seen.recv().await.unwrap().matches(':').count(),
        1,
        "bare pkam:<sig>"
    );
    conn.authenticate_pkam_with(&alice(), &rsa, HashingAlgo::Sha512, Some("enr-1"))
        .await
        .unwrap();
    assert!(seen
        .recv()
        .await
        .unwrap()
        .starts_with("pkam:signingAlgo:rsa2048:hashingAlgo:sha512:enrollmentId:enr-1:"));
    conn.authenticate_pkam(&alice(), &ecc, None).await.unwrap();
    assert!(seen
        .recv()
        .await
        .unwrap()
        .starts_with("pkam:signingAlgo:ecc_secp256r1:"));
    // ML-DSA-65 names its algorithm and no hashingAlgo (it hashes internally).
    conn.authenticate_pkam(&alice(), &mldsa, Some("enr-2"))
        .await
        .unwrap();
    assert!(seen
        .recv()
        .await
        .unwrap()
        .starts_with("pkam:signingAlgo:mldsa65:enrollmentId:enr-2:"));
    // A signer whose key the server does not hold is refused, and the connection stays usable.
    let stranger = PkamSigner::generate_ecc();
    let err = conn
        .authenticate_pkam(&alice(), &stranger, None)
        .await
        .unwrap_err();
    assert_eq!(err.server_code(), Some(ErrorCode::Unauthenticated));
    assert!(conn.send_data("from:@alice").await.is_ok());
    // A newline inside a command would smuggle a second command: refused before anything is sent.
    assert!(matches!(
        conn.send("update:public:x@alice a\nscan").await,
        Err(ClientError::MultiLineCommand)
    ));
    assert!(conn.send_data("from:@alice").await.is_ok());
}

fn uuid_like(seed: usize) -> String {
    format!("6f1e2d3c-4b5a-4978-8675-{seed:012}")
}

fn split_pkam(rest: &str) -> (SigningAlgo, HashingAlgo, &str) {
    let mut algo = SigningAlgo::Rsa2048;
    let mut hashing = HashingAlgo::Sha256;
    let mut rest = rest;
    loop {
        if let Some(r) = rest.strip_prefix("signingAlgo:") {
            let (v, r) = r.split_once(':').unwrap();
            algo = v.parse().unwrap();
            rest = r;
        } else if let Some(r) = rest.strip_prefix("hashingAlgo:") {
            let (v, r) = r.split_once(':').unwrap();
            hashing = v.parse().unwrap();
            rest = r;
        } else if let Some(r) = rest.strip_prefix("enrollmentId:") {
            rest = r.split_once(':').unwrap().1;
        } else {
            return (algo, hashing, rest);
        }
    }
}

#[tokio::test]
async fn from_and_pol_with_client_certificate() {
    let pki = Pki::new();
    let (cert_tx, mut cert_seen) = mpsc::unbounded_channel();
    let port = serve(&pki, move |mut c| {
        let cert_tx = cert_tx.clone();
        async move {
            cert_tx.send(c.client_presented_cert()).unwrap();
            c.send("@").await;
            assert_eq!(c.line().await.as_deref(), Some("from:@bob"));
            c.send("data:proof:_5e6f@bob:0c1d2e3f-aaaa-4bbb-8ccc-123456789abc\n@")
                .await;
            assert_eq!(c.line().await.as_deref(), Some("pol"));
            c.send("@bob@").await;
            assert_eq!(c.line().await.as_deref(), Some("lookup:phone@alice"));
            c.send("data:cipher\n@bob@").await;
            // A second prover whose proof does not check out.
            assert_eq!(c.line().await.as_deref(), Some("pol"));
            c.send("error:AT0401-Exception: Pol Authentication Failed\n@")
                .await;
            c.line().await;
        }
    })
    .await;
    let bob = AtSign::parse("@bob").unwrap();
    let mut conn = AtConnection::connect(&pki.client_config_with_cert(), "localhost", port)
        .await
        .unwrap();
    assert!(
        cert_seen.recv().await.unwrap(),
        "client certificate presented"
    );
    let proof = conn.from_peer(&bob).await.unwrap();
    assert_eq!(proof.session_key, "_5e6f@bob");
    assert_eq!(proof.challenge, "0c1d2e3f-aaaa-4bbb-8ccc-123456789abc");
    assert_eq!(proof.signature_key(), "public:_5e6f@bob");
    conn.pol(&bob).await.unwrap();
    assert_eq!(conn.prompt().as_wire(), "@bob@");
    assert_eq!(
        conn.send_data("lookup:phone@alice").await.unwrap(),
        "cipher"
    );
    let err = conn.pol(&bob).await.unwrap_err();
    assert_eq!(err.server_code(), Some(ErrorCode::Unauthenticated));
}

#[tokio::test]
async fn timeouts_name_their_step() {
    let pki = Pki::new();
    // Never greets.
    let silent = serve(&pki, |c| async move {
        let _hold = c;
        std::future::pending::<()>().await;
    })
    .await;
    let config = pki
        .client_config()
        .with_read_timeout(Duration::from_millis(200));
    match AtConnection::connect(&config, "127.0.0.1", silent).await {
        Err(ClientError::Timeout { step, after }) => {
            assert_eq!(step, "reading the greeting");
            assert_eq!(after, Duration::from_millis(200));
        }
        other => panic!("{other:?}"),
    }

    // Greets, then never answers.
    let mute = serve(&pki, |mut c| async move {
        c.send("@").await;
        while c.line().await.is_some() {}
    })
    .await;
    let mut conn = AtConnection::connect(&config, "127.0.0.1", mute)
        .await
        .unwrap();
    match conn.send("pkam:secret-signature").await {
        Err(ClientError::Timeout { step, .. }) => {
            assert_eq!(
                step, "reading the reply to `pkam`",
                "the signature stays out of errors"
            );
        }
        other => panic!("{other:?}"),
    }

    // Trickles bytes forever: the per-response limit fires even though reads keep succeeding.
    let trickle = serve(&pki, |mut c| async move {
        c.send("@").await;
        c.line().await;
        loop {
            c.send("x").await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let config = pki
        .client_config()
        .with_read_timeout(Duration::from_secs(30))
        .with_response_timeout(Duration::from_millis(300));
    let mut conn = AtConnection::connect(&config, "127.0.0.1", trickle)
        .await
        .unwrap();
    match conn.send("scan").await {
        Err(ClientError::Timeout { after, .. }) => assert_eq!(after, Duration::from_millis(300)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn closes_and_bad_certificates() {
    let pki = Pki::new();
    // Rejects the connection like a full atServer: an error line without a prompt, then close.
    let full = serve(&pki, |mut c| async move {
        c.send("@").await;
        c.line().await;
        c.send("error:AT0012-Inbound connection limit exceeded\n")
            .await;
        c.close().await;
    })
    .await;
    let config = pki.client_config();
    let mut conn = AtConnection::connect(&config, "127.0.0.1", full)
        .await
        .unwrap();
    match conn.send("from:@alice").await.unwrap() {
        Reply::Error { code, .. } => assert_eq!(code, Some(ErrorCode::InboundConnectionLimit)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        conn.send("noop:0").await,
        Err(ClientError::Closed { .. } | ClientError::Io { .. })
    ));

    // The same, but the server drops TCP without a TLS close_notify.
    let abrupt = serve(&pki, |mut c| async move {
        c.send("@").await;
        c.line().await;
        c.send("error:AT0012-Inbound connection limit exceeded\n")
            .await;
        drop(c);
    })
    .await;
    let mut conn = AtConnection::connect(&config, "127.0.0.1", abrupt)
        .await
        .unwrap();
    match conn.send("from:@alice").await.unwrap() {
        Reply::Error { code, .. } => assert_eq!(code, Some(ErrorCode::InboundConnectionLimit)),
        other => panic!("{other:?}"),
    }

    // A greeting that is not `@`.
    let odd = serve(&pki, |mut c| async move {
        c.send("hello\n").await;
        c.line().await;
    })
    .await;
    assert!(matches!(
        AtConnection::connect(&config, "127.0.0.1", odd).await,
        Err(ClientError::UnexpectedReply { .. })
    ));

    // A client that trusts another CA refuses the server certificate during the handshake.
    let other = Pki::new();
    match AtConnection::connect(&other.client_config(), "127.0.0.1", full).await {
        Err(ClientError::Io { step, .. }) => assert!(step.starts_with("TLS handshake"), "{step}"),
        other => panic!("{other:?}"),
    }
    // The certificate names localhost and 127.0.0.1, not other hosts.
    match AtConnection::connect_with_sni(&config, "127.0.0.1", full, "alice.example").await {
        Err(ClientError::Io { step, .. }) => assert!(step.starts_with("TLS handshake"), "{step}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn tls_options_from_pem_files() {
    use at_protocol::client::{ClientConfig, TlsOptions};
    let pki = Pki::new();
    let dir = std::env::temp_dir().join(format!("atfleet-client-pem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    std::fs::write(&cert, &pki.client_cert_pem).unwrap();
    std::fs::write(&key, &pki.client_key_pem).unwrap();

    let (cert_tx, mut cert_seen) = mpsc::unbounded_channel();
    let port = serve(&pki, move |mut c| {
        let cert_tx = cert_tx.clone();
        async move {
            cert_tx.send(c.client_presented_cert()).unwrap();
            c.send("@").await;
            c.line().await;
        }
    })
    .await;
    let tls = TlsOptions::from_ca_pem_file(&ca)
        .unwrap()
        .with_client_cert_pem_files(&cert, &key)
        .unwrap();
    let config = ClientConfig::new(tls)
        .unwrap()
        .with_connect_timeout(Duration::from_secs(5));
    AtConnection::connect(&config, "127.0.0.1", port)
        .await
        .unwrap();
    assert!(cert_seen.recv().await.unwrap());

    // Bad inputs are configuration errors naming what was wrong, not panics.
    assert!(matches!(
        TlsOptions::from_ca_pem(b"no certificates here"),
        Err(ClientError::TlsConfig(_))
    ));
    assert!(matches!(
        TlsOptions::from_ca_pem_file(&dir.join("missing.pem")),
        Err(ClientError::File { .. })
    ));
    assert!(matches!(
        TlsOptions::from_ca_pem_file(&ca)
            .unwrap()
            .with_client_cert_pem(pki.client_cert_pem.as_bytes(), b"not a key"),
        Err(ClientError::TlsConfig(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
