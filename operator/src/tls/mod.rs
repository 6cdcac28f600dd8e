//! Certificates: the operator's built-in CA and inspection of served certificates.

mod ca;
mod cert_info;
mod error;
mod inspect;
mod renewal;

pub use ca::{BuiltInCa, TlsMaterial, CA_CERT_KEY, CA_KEY_KEY};
pub use cert_info::CertInfo;
pub use error::TlsError;
pub use inspect::{inspect, reissue_reason, ReissueReason};
pub use renewal::RenewalPoint;
