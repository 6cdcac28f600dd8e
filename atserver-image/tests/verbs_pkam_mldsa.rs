//! `pkam:signingAlgo:mldsa65:…` (ML-DSA-65, FIPS 204) over TLS, against an independent
//! implementation: the pure-Python `dilithium-py` makes the keys and signs the server's
//! challenges; the atServer verifies with RustCrypto's `ml-dsa`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{data, json, TestServer, ATSIGN};

/// keygen <dir> <name>: writes <dir>/<name>.sk, prints the base64 public key.
/// sign <dir> <name> <message>: prints the base64 signature of <message> (UTF-8, empty context).
const DILITHIUM: &str = r#"
import base64, pathlib, sys
from dilithium_py.ml_dsa import ML_DSA_65
op, d, name = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
if op == "keygen":
    pk, sk = ML_DSA_65.keygen()
    (d / (name + ".sk")).write_bytes(sk)
    print(base64.b64encode(pk).decode())
else:
    sk = (d / (name + ".sk")).read_bytes()
    print(base64.b64encode(ML_DSA_65.sign(sk, sys.argv[4].encode())).decode())
"#;

async fn dilithium(args: &[&str]) -> String {
    let run = tokio::process::Command::new(atfleet_test_support::python::python())
        .arg("-c")
        .arg(DILITHIUM)
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("dilithium-py finished in time")
        .expect("run python");
    assert!(
        out.status.success(),
        "dilithium-py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn keygen(dir: &Path, name: &str) -> String {
    dilithium(&["keygen", dir.to_str().unwrap(), name]).await
}

async fn sign(dir: &Path, name: &str, message: &str) -> String {
    dilithium(&["sign", dir.to_str().unwrap(), name, message]).await
}

fn code(reply: &str) -> &str {
    reply
        .strip_prefix("error:")
        .and_then(|r| r.get(..6))
        .unwrap_or_else(|| panic!("expected an error, got {reply}"))
}

#[tokio::test]
async fn mldsa65_pkam_and_apkam_with_dilithium_py_keys() {
    let server = TestServer::start().await;
    let dir = server.tmp.path().to_path_buf();

    // Onboarding stores the PKAM public key as the reference's onboarding does.
    let pkam_public = keygen(&dir, "pkam").await;
    let mut owner = server.owner().await;
    owner
        .send(&format!(
            "update:privatekey:at_pkam_publickey {pkam_public}"
        ))
        .await;

    // Python signs the server's challenge; the server accepts it.
    let mut c = server.connect().await;
    let challenge = data(&c.send(&format!("from:{ATSIGN}")).await).to_string();
    let sig = sign(&dir, "pkam", &challenge).await;
    assert_eq!(
        c.send_raw(&format!("pkam:signingAlgo:mldsa65:{sig}")).await,
        format!("data:success\n{ATSIGN}@")
    );
    assert!(data(&c.send("update:pq.wavi@alice yes").await)
        .parse::<i64>()
        .is_ok());
    assert_eq!(c.send("llookup:pq.wavi@alice").await, "data:yes");

    // A signature over other text is refused with the reference's code, and so is a signature
    // that is not ML-DSA-65 at all; the connection stays usable.
    let mut bad = server.connect().await;
    let challenge = data(&bad.send(&format!("from:{ATSIGN}")).await).to_string();
    let wrong = sign(&dir, "pkam", &format!("{challenge}x")).await;
    assert_eq!(
        code(&bad.send(&format!("pkam:signingAlgo:mldsa65:{wrong}")).await),
        "AT0401"
    );
    let challenge = data(&bad.send(&format!("from:{ATSIGN}")).await).to_string();
    assert_eq!(
        code(&bad.send("pkam:signingAlgo:mldsa65:c2hvcnQ=").await),
        "AT0401"
    );
    // The right signature under a wrong algorithm name fails too.
    let right = sign(&dir, "pkam", &challenge).await;
    assert_eq!(
        code(
            &bad.send(&format!("pkam:signingAlgo:ecc_secp256r1:{right}"))
                .await
        ),
        "AT0401"
    );
    assert_eq!(
        bad.send_raw(&format!("pkam:signingAlgo:mldsa65:{right}"))
            .await,
        format!("data:success\n{ATSIGN}@")
    );

    // APKAM: an enrollment whose apkamPublicKey is an ML-DSA-65 key, recorded with its
    // signingAlgo as 3.16 clients send it.
    let apkam_public = keygen(&dir, "apkam").await;
    let r = json(&owner.send(&format!(
        r#"enroll:request:{{"appName":"pq","deviceName":"lattice","apkamPublicKey":"{apkam_public}","signingAlgo":"mldsa65","encryptedDefaultEncryptionPrivateKey":"ZW5j","encryptedDefaultSelfEncryptionKey":"c2Vs"}}"#
    )).await);
    assert_eq!(r["status"], "approved");
    let id = r["enrollmentId"].as_str().unwrap().to_string();
    let mut device = server.connect().await;
    let challenge = data(&device.send(&format!("from:{ATSIGN}")).await).to_string();
    let wrong_key = sign(&dir, "pkam", &challenge).await;
    assert_eq!(
        code(
            &device
                .send(&format!(
                    "pkam:signingAlgo:mldsa65:enrollmentId:{id}:{wrong_key}"
                ))
                .await
        ),
        "AT0401"
    );
    let challenge = data(&device.send(&format!("from:{ATSIGN}")).await).to_string();
    let sig = sign(&dir, "apkam", &challenge).await;
    assert_eq!(
        device
            .send_raw(&format!("pkam:signingAlgo:mldsa65:enrollmentId:{id}:{sig}"))
            .await,
        format!("data:success\n{ATSIGN}@")
    );
    // The record's algorithm decides, not the command's (3.16): a misstated claim still
    // verifies as ML-DSA ...
    let mut again = server.connect().await;
    let challenge = data(&again.send(&format!("from:{ATSIGN}")).await).to_string();
    let sig = sign(&dir, "apkam", &challenge).await;
    assert_eq!(
        again
            .send(&format!("pkam:signingAlgo:rsa2048:enrollmentId:{id}:{sig}"))
            .await,
        "data:success"
    );
    // ... and an ML-DSA key enrolled without its signingAlgo is read as RSA, so it is refused.
    let unnamed_public = keygen(&dir, "unnamed").await;
    let r = json(&owner.send(&format!(
        r#"enroll:request:{{"appName":"pq","deviceName":"unnamed","apkamPublicKey":"{unnamed_public}","encryptedDefaultEncryptionPrivateKey":"ZW5j","encryptedDefaultSelfEncryptionKey":"c2Vs"}}"#
    )).await);
    let unnamed = r["enrollmentId"].as_str().unwrap().to_string();
    let mut c = server.connect().await;
    let challenge = data(&c.send(&format!("from:{ATSIGN}")).await).to_string();
    let sig = sign(&dir, "unnamed", &challenge).await;
    assert_eq!(
        code(
            &c.send(&format!(
                "pkam:signingAlgo:mldsa65:enrollmentId:{unnamed}:{sig}"
            ))
            .await
        ),
        "AT0401"
    );
    // An unknown signingAlgo in a request is refused before anything is stored.
    let bad = owner
        .send(r#"enroll:request:{"appName":"x","deviceName":"y","apkamPublicKey":"k","signingAlgo":"dsa"}"#)
        .await;
    assert_eq!(code(&bad), "AT0022");
    server.stop().await;
}
