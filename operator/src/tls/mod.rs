//! Certificates: the operator's built-in CA and inspection of served certificates.

mod ca;
mod inspect;
mod renewal;

pub use ca::{BuiltInCa, CA_CERT_KEY, CA_KEY_KEY};
pub use inspect::{inspect, reissue_reason, CertInfo, ReissueReason};
pub use renewal::RenewalPoint;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("not a PEM certificate: {0}")]
    Pem(String),
    #[error("time out of range for a certificate")]
    Time,
}
