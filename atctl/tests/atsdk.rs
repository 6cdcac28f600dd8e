//! Acceptance 2: Atsign's Python SDK (atsdk) loads the keys file atctl wrote, authenticates, reads
//! what atctl stored (public, self, and as owner shared); atctl reads back what atsdk stored. Real
//! atserver and atdirectory processes. Reads by the recipient wait for server-to-server lookups.

mod common;

use std::path::PathBuf;

use common::Fleet;

/// The Python with atsdk: `ATFLEET_PYTHON` (set by `make test`), else `scripts/python-env`.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("ATFLEET_PYTHON") {
        if !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/python-env");
    let out = std::process::Command::new(script)
        .output()
        .expect("run scripts/python-env");
    assert!(
        out.status.success(),
        "scripts/python-env failed (set ATFLEET_PYTHON to a python with atsdk): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atsdk_uses_the_keys_file_and_data_round_trips() {
    let python = python();
    let mut fleet = Fleet::start().await;
    let _alice = fleet.server("@alice").await;
    let _bob = fleet.server("@bob").await;
    let atctl = fleet.atctl("keys");
    let bob = fleet.atctl("bob");
    let bob_secret = fleet.path().join("bob.cram");
    bob.run(&[
        "onboard",
        "@bob",
        "--cram-secret-file",
        bob_secret.to_str().unwrap(),
    ])
    .await
    .ok();
    let secret = fleet.path().join("alice.cram");
    atctl
        .run(&[
            "onboard",
            "@alice",
            "--cram-secret-file",
            secret.to_str().unwrap(),
        ])
        .await
        .ok();
    atctl
        .run(&["put", "public:location.wavi@alice", "Lagos, Nigeria"])
        .await
        .ok();
    atctl
        .run(&["put", "phone.wavi@alice", "+234 555 0100"])
        .await
        .ok();
    // Shared with @bob: atsdk (as @alice) must open it with the shared key atctl created.
    atctl
        .run(&["put", "@bob:phone.wavi@alice", "+234 555 0199"])
        .await
        .ok();

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/atsdk_with_atctl.py"
    );
    let run = tokio::process::Command::new(python)
        .arg(script)
        .arg(&atctl.keys_dir)
        .arg("127.0.0.1")
        .arg(fleet.root_addr.port().to_string())
        // atsdk has no CA option; OpenSSL reads this variable.
        .env("SSL_CERT_FILE", &fleet.pki.ca_path)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), run)
        .await
        .expect("atsdk script finished in time")
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ATCTL-ATSDK-OK"),
        "atsdk failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let run = atctl.run(&["get", "public:city.py@alice"]).await.ok();
    assert_eq!(run.stdout.trim(), "Accra");
    let run = atctl.run(&["get", "pin.py@alice"]).await.ok();
    assert_eq!(run.stdout.trim(), "4321 from python");
    let run = atctl.run(&["get", "@bob:email.py@alice"]).await.ok();
    assert_eq!(run.stdout.trim(), "alice@example.com");
}
