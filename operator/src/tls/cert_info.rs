//! What the operator reads from a certificate.

use jiff::Timestamp;

/// A certificate's validity and names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// DNS names and IP addresses (as text) in the subjectAltName.
    pub names: Vec<String>,
}
