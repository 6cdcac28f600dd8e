//! What the pure builders need but the spec does not hold: the CRAM secret (made once, then
//! kept) and, in the Certificate step, the TLS material (kept, issued by the built-in CA, or
//! written by cert-manager). No API calls: the Gather step read everything these decide on.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Secret;

use super::ca_store::CaState;
use crate::build::{TlsMaterial, CRAM_KEY};
use crate::endpoint::Endpoint;
use crate::tls::{inspect, reissue_reason, CertInfo, ReissueReason, RenewalPoint, TlsError};

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

/// The Certificate step: the TLS state for the published endpoint. The built-in CA (`ca`, when
/// no issuer is named) keeps the stored certificate while it is valid and not due, else issues
/// one; cert-manager's is read as it wrote it. Without an endpoint there is nothing to issue for.
pub fn for_endpoint(
    ca: Option<&CaState>,
    existing: Option<&Secret>,
    endpoint: Option<&Endpoint>,
    lifetime_hours: i64,
    now: Timestamp,
    renewal: RenewalPoint,
) -> Result<TlsState, TlsError> {
    match (ca, endpoint) {
        (Some(ca), Some(ep)) => builtin(ca, existing, &ep.host, lifetime_hours, now, renewal),
        (Some(_), None) => Ok(TlsState {
            material: None,
            present: false,
            issuer_cas: Vec::new(),
            info: None,
            reissued: None,
        }),
        (None, _) => Ok(external(existing)),
    }
}

/// Built-in CA: reuse the stored certificate while it is valid for `host` and not due, else
/// issue a new one.
fn builtin(
    state: &CaState,
    existing: Option<&Secret>,
    host: &str,
    lifetime_hours: i64,
    now: Timestamp,
    renewal: RenewalPoint,
) -> Result<TlsState, TlsError> {
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

/// The `CertificateIssued` Event's note: the host, the expiry, and why in words.
pub fn certificate_issued_note(reason: ReissueReason, info: &CertInfo) -> String {
    let why = match reason {
        ReissueReason::Missing => "there was none yet",
        ReissueReason::Unreadable => "the stored one could not be read",
        ReissueReason::HostChanged => "the published host changed",
        ReissueReason::IssuerChanged => "the built-in CA changed",
        ReissueReason::DueForRenewal => "the previous one was due for renewal",
    };
    format!(
        "the built-in CA issued a certificate for {} valid until {} ({why})",
        info.names.join(", "),
        info.not_after
    )
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
