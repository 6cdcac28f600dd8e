//! Atsign's Python SDK across two of our atservers (acceptance 4): @alice and @bob, onboarded
//! the legacy way, resolved through the real atDirectory. atsdk on @alice shares a value that
//! atsdk on @bob reads and decrypts, then notifies @bob, whose atsdk monitor receives it.

#[path = "common/fleet.rs"]
mod fleet;
#[path = "common/keys.rs"]
#[allow(dead_code)]
mod keys;

use std::path::Path;
use std::time::Duration;

use at_protocol::crypto::{PkamSigner, SigningAlgo};
use atfleet_test_support::python::run_script;
use fleet::{send, Fleet, Node};

/// The legacy onboarding (atprotocol.md §6.3): PKAM key, encryption public key, CRAM secret
/// removed; the `.atKeys` file goes where atsdk looks for it.
async fn onboard(fleet: &Fleet, node: &Node, keys_dir: &Path) {
    let pkam = keys::rsa_keypair();
    let enc = keys::rsa_keypair();
    let atsign = node.atsign.as_str();
    std::fs::write(
        keys_dir.join(format!("{atsign}_key.atKeys")),
        keys::atkeys_json(atsign, &pkam, &enc),
    )
    .unwrap();
    let mut c = fleet.owner(node).await;
    let reply = send(
        &mut c,
        &format!("update:privatekey:at_pkam_publickey {}", pkam.public),
    )
    .await;
    assert_eq!(reply, "data:-1");
    let signer = PkamSigner::from_encoded(SigningAlgo::Rsa2048, &pkam.private).unwrap();
    c.authenticate_pkam(&node.atsign, &signer, None)
        .await
        .expect("pkam");
    let reply = send(
        &mut c,
        &format!("update:public:publickey{atsign} {}", enc.public),
    )
    .await;
    assert!(reply.starts_with("data:"), "{reply}");
    assert_eq!(send(&mut c, "delete:privatekey:at_secret").await, "data:-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atsdk_shares_and_notifies_across_two_servers() {
    let fleet = Fleet::start().await;
    let alice = fleet.start_node("@alice", "127.0.0.2").await;
    let bob = fleet.start_node("@bob", "127.0.0.3").await;
    let keys_dir = fleet.tmp.path().join("keys");
    std::fs::create_dir_all(&keys_dir).unwrap();
    onboard(&fleet, &alice, &keys_dir).await;
    onboard(&fleet, &bob, &keys_dir).await;

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/atsdk_s2s.py");
    let mut keys_arg = keys_dir.into_os_string();
    keys_arg.push("/");
    let root = fleet.root_addr;
    let args = [
        keys_arg,
        root.ip().to_string().into(),
        root.port().to_string().into(),
    ];
    let limit = Duration::from_secs(240);
    run_script(script, &args, &fleet.pki.ca_path, limit, "ATSDK-S2S-OK").await;
}
