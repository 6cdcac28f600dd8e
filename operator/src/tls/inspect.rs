//! Reading a served certificate back: its validity, its names, and whether to reissue it.

use jiff::Timestamp;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::parse_x509_pem;

use super::cert_info::CertInfo;
use super::error::TlsError;
use super::renewal::RenewalPoint;

/// Parses the first certificate of a PEM chain.
pub fn inspect(pem: &[u8]) -> Result<CertInfo, TlsError> {
    let (_, pem) = parse_x509_pem(pem).map_err(|e| TlsError::Pem(e.to_string()))?;
    let cert = pem.parse_x509().map_err(|e| TlsError::Pem(e.to_string()))?;
    let ts = |t: i64| Timestamp::from_second(t).map_err(|_| TlsError::Time);
    let validity = cert.validity();
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => names.push((*d).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        names.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(CertInfo {
        not_before: ts(validity.not_before.timestamp())?,
        not_after: ts(validity.not_after.timestamp())?,
        names,
    })
}

fn ip_from_bytes(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// Why a certificate must be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReissueReason {
    Missing,
    Unreadable,
    HostChanged,
    IssuerChanged,
    DueForRenewal,
}

impl ReissueReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ReissueReason::Missing => "Missing",
            ReissueReason::Unreadable => "Unreadable",
            ReissueReason::HostChanged => "HostChanged",
            ReissueReason::IssuerChanged => "IssuerChanged",
            ReissueReason::DueForRenewal => "DueForRenewal",
        }
    }
}

/// Decides whether the built-in CA must issue a new certificate for `host`.
/// `current` is the certificate and the CA bundle stored with it, if any; `renewal` is this
/// Atsign's point in the certificate's life to renew at.
pub fn reissue_reason(
    current: Option<(&[u8], &[u8])>,
    ca_pem: &[u8],
    host: &str,
    now: Timestamp,
    renewal: RenewalPoint,
) -> Option<ReissueReason> {
    let Some((cert, stored_ca)) = current else {
        return Some(ReissueReason::Missing);
    };
    let Ok(info) = inspect(cert) else {
        return Some(ReissueReason::Unreadable);
    };
    if !info.names.iter().any(|n| n == host) {
        return Some(ReissueReason::HostChanged);
    }
    if stored_ca != ca_pem {
        return Some(ReissueReason::IssuerChanged);
    }
    if now >= renewal.time(&info) {
        return Some(ReissueReason::DueForRenewal);
    }
    None
}
