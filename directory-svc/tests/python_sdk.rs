//! Atsign's Python SDK (atsdk) resolves atSigns through this directory with its own root client,
//! trusting the test CA through SSL_CERT_FILE (acceptance 6).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::http::Api;
use common::{Fixture, TOKEN};

const SCRIPT: &str = r#"
import sys
from at_client.common import AtSign
from at_client.connections.atrootconnection import AtRootConnection
from at_client.exception.atexception import AtSecondaryNotFoundException

root = AtRootConnection.get_instance(sys.argv[1], int(sys.argv[2]))
for name in ["@alice", "@bob", "@alice"]:
    address = root.find_secondary(AtSign(name))
    print(f"{name} {address.host}:{address.port}")
try:
    root.find_secondary(AtSign("@nobody"))
    print("@nobody found")
except AtSecondaryNotFoundException:
    print("@nobody not found")
"#;

/// The interpreter with atsdk: `ATFLEET_PYTHON` (set by `make test`) or `scripts/python-env`.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("ATFLEET_PYTHON") {
        if !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/python-env");
    let out = std::process::Command::new(&script)
        .output()
        .expect("run scripts/python-env");
    assert!(
        out.status.success(),
        "scripts/python-env failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

#[tokio::test]
async fn atsdk_root_client_resolves_through_the_directory() {
    let fixture = Fixture::new().await;
    let server = fixture.start(&[]).await;
    let api = Api::new(server.http_addr, Some(TOKEN));
    api.register("alice", "127.0.0.1", 25000, "op-a").await;
    api.register("bob", "bob.fleet.example", 6464, "op-a").await;

    let run = tokio::process::Command::new(python())
        .arg("-c")
        .arg(SCRIPT)
        .arg("127.0.0.1")
        .arg(server.root_addr.port().to_string())
        .env("SSL_CERT_FILE", fixture.pki.ca_path())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("atsdk finished")
        .expect("python ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "@alice 127.0.0.1:25000",
            "@bob bob.fleet.example:6464",
            "@alice 127.0.0.1:25000",
            "@nobody not found"
        ]
    );
    server.shutdown().await;
}
