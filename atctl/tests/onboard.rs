//! Acceptance 1: onboarding and everyday data commands against real atserver and atdirectory
//! processes.

mod common;

use at_protocol::client::AtConnection;
use at_protocol::crypto::{AtKeysFile, PkamSigner};
use at_protocol::AtSign;
use common::{Fleet, Server};
use tokio::io::AsyncWriteExt;

async fn raw_conn(fleet: &Fleet, server: &Server) -> AtConnection {
    AtConnection::connect(&fleet.client_config(), "127.0.0.1", server.tls.port())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboard_disables_cram_and_keys_work_for_data() {
    let mut fleet = Fleet::start().await;
    let alice = fleet.server("@alice").await;
    let atctl = fleet.atctl("keys");
    let at = AtSign::parse("@alice").unwrap();

    // A wrong secret: authentication failure, a message naming the AT code, and no keys file.
    let wrong = fleet.path().join("wrong.secret");
    std::fs::write(&wrong, "0123abcd").unwrap();
    let run = atctl
        .run(&[
            "onboard",
            "@alice",
            "--cram-secret-file",
            wrong.to_str().unwrap(),
        ])
        .await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("AT0401"), "{run:?}");
    assert!(run.stderr.contains("CRAM secret is wrong"), "{run:?}");
    assert!(!atctl.keys_file("@alice").exists());
    let leftovers = std::fs::read_dir(&atctl.keys_dir)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(leftovers, 0, "a failed onboarding leaves no file behind");

    // The right secret.
    let run = atctl.onboard("@alice", &["--json"]).await.ok();
    let v = run.json();
    assert_eq!(v["flow"], "apkam", "{v}");
    let path = atctl.keys_file("@alice");
    assert_eq!(v["keysFile"], path.display().to_string());
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let keys = AtKeysFile::load(&path).unwrap().decrypt().unwrap();
    assert!(keys.enrollment_id.is_some());

    // CRAM no longer works; PKAM with the written keys does (plain, as the SDKs do, and APKAM).
    let mut conn = raw_conn(&fleet, &alice).await;
    let err = conn
        .authenticate_cram(&at, &alice.secret)
        .await
        .unwrap_err();
    assert!(err.server_code().is_some(), "{err}");
    let signer = PkamSigner::rsa(keys.pkam.private_key().clone());
    let mut conn = raw_conn(&fleet, &alice).await;
    conn.authenticate_pkam(&at, &signer, None).await.unwrap();
    let mut conn = raw_conn(&fleet, &alice).await;
    conn.authenticate_pkam(&at, &signer, keys.enrollment_id.as_deref())
        .await
        .unwrap();
    let published = conn
        .send_data("llookup:public:publickey@alice")
        .await
        .unwrap();
    assert_eq!(published.trim(), keys.encryption.public_b64().unwrap());

    // Onboarding again: refused without --force (before touching the server) ...
    let run = atctl.onboard("@alice", &[]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--force"), "{run:?}");
    // ... and with --force the server says CRAM is gone, and the file is untouched.
    let run = atctl.onboard("@alice", &["--force"]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr
            .contains("@alice is already onboarded (its server has CRAM disabled)"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("CRAM secret is wrong"), "{run:?}");
    assert_eq!(AtKeysFile::load(&path).unwrap().decrypt().unwrap(), keys);

    let run = atctl.run(&["auth", "check"]).await.ok();
    assert!(run.stdout.contains("authenticated as @alice"), "{run:?}");

    // Public data: plain and signed; readable without keys.
    atctl
        .run(&["put", "public:location.wavi@alice", "Lagos"])
        .await
        .ok();
    let run = atctl.run(&["get", "public:location.wavi@alice"]).await.ok();
    assert_eq!(run.stdout.trim(), "Lagos");
    let stranger = fleet.atctl("nobody");
    let run = stranger
        .run(&["--json", "get", "public:location.wavi@alice"])
        .await
        .ok();
    assert_eq!(run.json()["value"], "Lagos");
    assert!(
        run.json()["metadata"]["dataSignature"].is_string(),
        "{run:?}"
    );

    // Self data: encrypted on the server, decrypted by atctl; namespace flag.
    atctl
        .run(&["put", "phone", "-n", "wavi", "+44 1234", "--ttr", "-1"])
        .await
        .ok();
    let run = atctl.run(&["get", "phone.wavi@alice"]).await.ok();
    assert_eq!(run.stdout.trim(), "+44 1234");
    let stored = conn.send_data("llookup:phone.wavi@alice").await.unwrap();
    assert_ne!(
        stored.trim(),
        "+44 1234",
        "self data must be stored encrypted"
    );
    let meta = conn
        .send_data("llookup:meta:phone.wavi@alice")
        .await
        .unwrap();
    assert!(meta.contains("\"isEncrypted\":true"), "{meta}");
    assert!(meta.contains("ivNonce"), "{meta}");

    // Metadata flags reach the server: a ttl is reported back; a value not yet born is not found.
    atctl
        .run(&[
            "put",
            "otp.wavi@alice",
            "1234",
            "--ttl",
            "3600000",
            "--ccd",
            "true",
        ])
        .await
        .ok();
    let run = atctl.run(&["--json", "get", "otp.wavi@alice"]).await.ok();
    assert_eq!(run.json()["value"], "1234");
    assert_eq!(run.json()["metadata"]["ttl"], 3600000, "{run:?}");
    atctl
        .run(&["put", "later.wavi@alice", "soon", "--ttb", "3600000"])
        .await
        .ok();
    let run = atctl.run(&["get", "later.wavi@alice"]).await;
    assert_eq!(run.code, 4, "{run:?}");

    let run = atctl.run(&["--json", "scan"]).await.ok();
    let keys_listed = run.json()["keys"].clone();
    let listed: Vec<String> = serde_json::from_value(keys_listed).unwrap();
    assert!(
        listed.contains(&"phone.wavi@alice".to_string()),
        "{listed:?}"
    );
    assert!(
        listed.contains(&"public:location.wavi@alice".to_string()),
        "{listed:?}"
    );

    // Delete, then not found (exit 4).
    atctl.run(&["delete", "phone.wavi@alice"]).await.ok();
    atctl
        .run(&["delete", "public:location.wavi@alice"])
        .await
        .ok();
    let run = atctl.run(&["get", "phone.wavi@alice"]).await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("AT0015"), "{run:?}");
    let run = stranger.run(&["get", "public:location.wavi@alice"]).await;
    assert_eq!(run.code, 4, "{run:?}");
    // Deleting it again deletes nothing, and says so (the server would answer a commit id).
    let run = atctl.run(&["delete", "phone.wavi@alice"]).await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(
        run.stderr.contains(
            "AT0015 phone.wavi@alice does not exist on @alice's server: nothing was deleted"
        ),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_onboarding_from_stdin() {
    let mut fleet = Fleet::start().await;
    let bob = fleet.server("@bob").await;
    let atctl = fleet.atctl("keys");
    let mut child = atctl
        .command(&[
            "--json",
            "onboard",
            "@bob",
            "--cram-secret-stdin",
            "--legacy",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{}\n", bob.secret).as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["flow"], "legacy");
    assert!(v["enrollmentId"].is_null());
    let keys = AtKeysFile::load(&atctl.keys_file("@bob"))
        .unwrap()
        .decrypt()
        .unwrap();
    assert!(keys.enrollment_id.is_none());
    atctl.run(&["-a", "@bob", "auth", "check"]).await.ok();
    let mut conn = raw_conn(&fleet, &bob).await;
    let err = conn
        .authenticate_cram(&AtSign::parse("@bob").unwrap(), &bob.secret)
        .await
        .unwrap_err();
    assert!(err.server_code().is_some(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_lookups_and_exit_codes() {
    let mut fleet = Fleet::start().await;
    let alice = fleet.server("@alice").await;
    let atctl = fleet.atctl("keys");
    let run = atctl.run(&["lookup", "@alice"]).await.ok();
    assert_eq!(run.stdout.trim(), format!("127.0.0.1:{}", alice.tls.port()));
    let run = atctl.run(&["--json", "lookup", "@nobody"]).await;
    assert_eq!(run.code, 4, "{run:?}");
    let err: serde_json::Value = serde_json::from_str(run.stderr.trim()).unwrap();
    assert_eq!(err["error"], "not_found");
    // No keys file: usage error that says to onboard.
    let run = atctl.run(&["-a", "@alice", "auth", "check"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("atctl onboard @alice"), "{run:?}");
    // Nothing listening: connection failure.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let run = fleet
        .atctl_with_root("keys", &format!("127.0.0.1:{port}"))
        .run(&["lookup", "@alice"])
        .await;
    assert_eq!(run.code, 5, "{run:?}");
    // --server skips the directory altogether (here: an unreachable one).
    let direct = fleet.atctl_with_root("keys", &format!("127.0.0.1:{port}"));
    let server = format!("127.0.0.1:{}", alice.tls.port());
    direct.onboard("@alice", &["--server", &server]).await.ok();
    direct
        .run(&["--server", &server, "auth", "check"])
        .await
        .ok();
    // Bad flags: clap's usage error.
    let run = atctl.run(&["put"]).await;
    assert_eq!(run.code, 2, "{run:?}");
}

/// What the operator relies on when a deleted CRAM Secret is regenerated: the atServer reads
/// `--cram-secret-file` only at start, so the restarted server takes the new secret and refuses
/// the old one (until onboarding disables CRAM for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_takes_a_replaced_cram_secret() {
    let mut fleet = Fleet::start().await;
    let before = fleet.server("@alice").await;
    let _after = fleet.restart_with_new_secret(&before).await;
    let atctl = fleet.atctl("keys");
    let old = fleet.path().join("old.secret");
    std::fs::write(&old, &before.secret).unwrap();
    let run = atctl
        .run(&[
            "onboard",
            "@alice",
            "--cram-secret-file",
            old.to_str().unwrap(),
        ])
        .await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("CRAM secret is wrong"), "{run:?}");
    let run = atctl.onboard("@alice", &[]).await.ok();
    assert!(run.stdout.contains("onboarded @alice"), "{run:?}");
}
