//! The CRAM Secret and the built-in CA's TLS Secret. Neither has an owner reference: they
//! outlive the Atsign when its retention policy says so.
//!
//! The TLS Secret also carries the atServer's trust bundle (`trust-bundle.crt`, see
//! [`super::trust`]), which the pod passes as its `--ca-bundle`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;

use super::names::{cram_secret_name, tls_secret_name, CRAM_KEY, TRUST_BUNDLE_KEY};
use super::object::meta;
use crate::resolve::Resolved;
use crate::tls::TlsMaterial;

pub fn cram_secret(r: &Resolved, secret: &str) -> Secret {
    Secret {
        metadata: meta(cram_secret_name(&r.name), r, None),
        type_: Some("Opaque".into()),
        immutable: Some(true),
        data: Some(BTreeMap::from([(CRAM_KEY.to_owned(), bytes(secret))])),
        ..Secret::default()
    }
}

pub fn tls_secret(r: &Resolved, t: &TlsMaterial, trust: &str) -> Secret {
    Secret {
        metadata: meta(tls_secret_name(&r.name), r, None),
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_owned(), bytes(&t.cert_pem)),
            ("tls.key".to_owned(), bytes(&t.key_pem)),
            ("ca.crt".to_owned(), bytes(&t.ca_pem)),
            (TRUST_BUNDLE_KEY.to_owned(), bytes(trust)),
        ])),
        ..Secret::default()
    }
}

fn bytes(s: &str) -> ByteString {
    ByteString(s.as_bytes().to_vec())
}
