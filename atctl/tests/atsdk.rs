//! Acceptance 2: Atsign's Python SDK (atsdk) loads the keys file atctl wrote, authenticates, reads
//! what atctl stored (public, self, and as owner shared); atctl reads back what atsdk stored. Real
//! atserver and atdirectory processes. Across two atServers (acceptance 2, shared part): atsdk as
//! @bob reads what atctl as @alice shared, and atctl as the recipient reads what atsdk shared.

mod common;

use std::time::Duration;

use common::{Fleet, Monitor};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atsdk_uses_the_keys_file_and_data_round_trips() {
    let mut fleet = Fleet::start().await;
    let _alice = fleet.server("@alice").await;
    let _bob = fleet.server("@bob").await;
    let atctl = fleet.atctl("keys");
    let bob = fleet.atctl("bob");
    bob.onboard("@bob", &[]).await.ok();
    atctl.onboard("@alice", &[]).await.ok();
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
    run_script(&fleet, script, &atctl.keys_dir, "ATCTL-ATSDK-OK").await;

    let run = atctl.run(&["get", "public:city.py@alice"]).await.ok();
    assert_eq!(run.stdout.trim(), "Accra");
    let run = atctl.run(&["get", "pin.py@alice"]).await.ok();
    assert_eq!(run.stdout.trim(), "4321 from python");
    let run = atctl.run(&["get", "@bob:email.py@alice"]).await.ok();
    assert_eq!(run.stdout.trim(), "alice@example.com");
}

/// Runs an interop script with `keys_dir` and the directory's address; panics with its output
/// unless it succeeds and prints `marker`.
async fn run_script(fleet: &Fleet, script: &str, keys_dir: &std::path::Path, marker: &str) {
    let args = [
        keys_dir.as_os_str().to_owned(),
        "127.0.0.1".into(),
        fleet.root_addr.port().to_string().into(),
    ];
    let limit = Duration::from_secs(120);
    atfleet_test_support::python::run_script(script, &args, &fleet.pki.ca_path, limit, marker)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atsdk_and_atctl_read_each_others_shares_across_servers() {
    let mut fleet = Fleet::start().await;
    let _alice = fleet.server_on_own_host("@alice", "127.0.0.2").await;
    let _bob = fleet.server_on_own_host("@bob", "127.0.0.3").await;
    // Both atSigns' keys files in one folder, as atsdk looks for them in one place.
    let atctl = fleet.atctl("keys");
    for who in ["alice", "bob"] {
        atctl.onboard(&format!("@{who}"), &[]).await.ok();
    }
    atctl
        .run(&["-a", "@alice", "put", "phone.wavi", "+234 555 0100"])
        .await
        .ok();
    atctl
        .run(&["-a", "@alice", "share", "phone.wavi", "--with", "@bob"])
        .await
        .ok();

    let mut monitor = Monitor::start(&atctl, "@bob");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/atsdk_shared.py");
    run_script(&fleet, script, &atctl.keys_dir, "ATSDK-SHARED-OK").await;

    // atsdk's notification has no sharedKeyEnc: atctl's monitor looks the shared key up.
    let got = monitor
        .next_match(|v| v["notification"]["key"] == "@bob:note.py@alice")
        .await;
    assert_eq!(got["notification"]["from"], "@alice", "{got}");
    let enc = &got["notification"]["metadata"]["sharedKeyEnc"];
    assert!(enc.is_null() || enc == "null", "{got}");
    assert_eq!(got["decryptedValue"], "hello from python", "{got}");
    monitor.child.kill().await.ok();

    // atctl as each recipient, through its own server.
    let run = atctl
        .run(&["-a", "@bob", "get", "email.py@alice"])
        .await
        .ok();
    assert_eq!(run.stdout.trim(), "alice@example.com from python");
    let run = atctl
        .run(&["-a", "@alice", "get", "reply.py@bob"])
        .await
        .ok();
    assert_eq!(run.stdout.trim(), "pong from python");
}
