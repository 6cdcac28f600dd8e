//! One CA for everything: the operator's built-in CA is made here and stored where the operator
//! looks for it (Secret `atfleet-system/atfleet-ca`), and it issues the atDirectory's certificate,
//! so atServers (which trust the CA in their TLS Secret) and atctl trust the directory too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atfleet_operator::tls::{BuiltInCa, CA_CERT_KEY, CA_KEY_KEY};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::PostParams;
use kube::Api;

use super::error::LocalError;
use super::names::SYSTEM_NAMESPACE;

pub struct DirectoryTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub async fn install(client: &kube::Client, dir: &Path) -> Result<DirectoryTls, LocalError> {
    let pki = |e: atfleet_operator::tls::TlsError| LocalError::Pki(e.to_string());
    let now = Timestamp::now();
    let ca = BuiltInCa::generate(now).map_err(pki)?;
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("atfleet-ca".into()),
            namespace: Some(SYSTEM_NAMESPACE.into()),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            (
                CA_CERT_KEY.to_owned(),
                ByteString(ca.cert_pem().as_bytes().to_vec()),
            ),
            (CA_KEY_KEY.to_owned(), ByteString(ca.key_pem().into_bytes())),
        ])),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(client.clone(), SYSTEM_NAMESPACE)
        .create(&PostParams::default(), &secret)
        .await?;
    let leaf = ca
        .issue("127.0.0.1", now, SignedDuration::from_hours(24 * 30))
        .map_err(pki)?;
    let out = DirectoryTls {
        ca: dir.join("ca-bundle.pem"),
        cert: dir.join("directory.crt"),
        key: dir.join("directory.key"),
    };
    for (path, pem) in [
        (&out.ca, &leaf.ca_pem),
        (&out.cert, &leaf.cert_pem),
        (&out.key, &leaf.key_pem),
    ] {
        std::fs::write(path, pem).map_err(LocalError::io(path))?;
    }
    Ok(out)
}
