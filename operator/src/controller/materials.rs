//! Gathering what the pure builders need but the spec does not hold: the CRAM secret (made
//! once, then kept) and the TLS material (issued by the built-in CA, or written by cert-manager).

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Secret;

use super::{Context, Error};
use crate::build::{TlsMaterial, CRAM_KEY};
use crate::tls::{inspect, reissue_reason, CertInfo, ReissueReason, RenewalPoint};

/// The existing CRAM secret, or a fresh one: 64 random bytes as lower-case hex, the shape the
/// atServer and the SDKs expect.
pub fn cram_secret(existing: Option<&Secret>) -> (String, bool) {
    let stored = existing
        .and_then(|s| s.data.as_ref())
        .and_then(|d| d.get(CRAM_KEY))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .filter(|s| !s.is_empty());
    match stored {
        Some(s) => (s, false),
        None => {
            let bytes: [u8; 32] = rand::random();
            let more: [u8; 32] = rand::random();
            (format!("{}{}", hex::encode(bytes), hex::encode(more)), true)
        }
    }
}

fn field<'a>(secret: &'a Secret, key: &str) -> Option<&'a [u8]> {
    secret.data.as_ref()?.get(key).map(|b| b.0.as_slice())
}

/// The certificate currently served, as far as the TLS Secret tells.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsState {
    pub material: Option<TlsMaterial>,
    /// The TLS Secret holds a certificate the pod can mount.
    pub present: bool,
    /// The CAs the fleet's certificates come from, for the trust bundle.
    pub issuer_cas: Vec<String>,
    pub info: Option<CertInfo>,
    /// Set when the built-in CA issued a new certificate in this reconcile.
    pub reissued: Option<ReissueReason>,
}

/// Built-in CA: reuse the stored certificate while it is valid for `host` and not due, else
/// issue a new one.
pub async fn builtin(
    ctx: &Context,
    existing: Option<&Secret>,
    host: &str,
    lifetime_hours: i64,
    now: Timestamp,
    renewal: RenewalPoint,
) -> Result<TlsState, Error> {
    let state = ctx.ca.get().await?;
    let ca = &state.issuing;
    let current = existing.and_then(|s| Some((field(s, "tls.crt")?, field(s, "ca.crt")?)));
    let reason = reissue_reason(current, ca.cert_pem().as_bytes(), host, now, renewal);
    let material = match (reason, existing) {
        (None, Some(secret)) => stored_material(secret),
        _ => None,
    };
    let (material, reissued) = match material {
        Some(m) => (m, None),
        None => {
            let lifetime = SignedDuration::from_hours(lifetime_hours.max(1));
            (
                ca.issue(host, now, lifetime)?,
                Some(reason.unwrap_or(ReissueReason::Unreadable)),
            )
        }
    };
    let info = inspect(material.cert_pem.as_bytes()).ok();
    Ok(TlsState {
        present: true,
        issuer_cas: state.trusted(),
        material: Some(material),
        info,
        reissued,
    })
}

fn stored_material(secret: &Secret) -> Option<TlsMaterial> {
    let text = |k: &str| field(secret, k).and_then(|b| String::from_utf8(b.to_vec()).ok());
    Some(TlsMaterial {
        cert_pem: text("tls.crt")?,
        key_pem: text("tls.key")?,
        ca_pem: text("ca.crt")?,
    })
}

/// cert-manager: whatever it wrote into the Secret. Its `ca.crt` is optional (ACME issuers and
/// many ClusterIssuers write none): trust then comes from the fleet's bundle alone.
pub fn external(existing: Option<&Secret>) -> TlsState {
    let cert = existing.and_then(|s| field(s, "tls.crt"));
    let ca = existing
        .and_then(|s| field(s, "ca.crt"))
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .filter(|c| !c.trim().is_empty());
    TlsState {
        material: None,
        present: cert.is_some(),
        issuer_cas: ca.into_iter().collect(),
        info: cert.and_then(|c| inspect(c).ok()),
        reissued: None,
    }
}
