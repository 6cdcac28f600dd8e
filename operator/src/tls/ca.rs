//! The built-in CA: a self-signed ECDSA P-256 root whose key lives in a Secret the operator
//! creates, issuing leaf certificates for serverAuth and clientAuth (atServers present their
//! certificate to peers for from/pol).

use jiff::{SignedDuration, Timestamp};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

use super::error::TlsError;

/// Certificate and key for the built-in CA path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsMaterial {
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
}
/// Keys of the CA Secret.
pub const CA_CERT_KEY: &str = "ca.crt";
pub const CA_KEY_KEY: &str = "ca.key";

const CA_LIFETIME: SignedDuration = SignedDuration::from_hours(24 * 365 * 10);

pub struct BuiltInCa {
    cert_pem: String,
    key: KeyPair,
}

impl std::fmt::Debug for BuiltInCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltInCa").finish_non_exhaustive()
    }
}

/// The CA's parameters. The issuer side of every leaf is rebuilt from these, so they must be
/// the same every time the CA is loaded.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "atfleet");
    dn.push(DnType::CommonName, "atfleet built-in CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn offset(t: Timestamp) -> Result<time::OffsetDateTime, TlsError> {
    time::OffsetDateTime::from_unix_timestamp(t.as_second()).map_err(|_| TlsError::Time)
}

fn serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Positive and non-zero as X.509 wants.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

impl BuiltInCa {
    /// A new CA valid for ten years from `now`.
    pub fn generate(now: Timestamp) -> Result<Self, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = ca_params();
        params.not_before = offset(now - SignedDuration::from_mins(5))?;
        params.not_after = offset(now + CA_LIFETIME)?;
        params.serial_number = Some(serial());
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key,
        })
    }

    /// Loads the CA from its Secret's PEM contents.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, TlsError> {
        super::inspect(cert_pem.as_bytes())?;
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            key: KeyPair::from_pem(key_pem)?,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A fresh key and a certificate for `host` (a DNS name or an IP address), valid from
    /// a few minutes before `now` (clock skew) for `lifetime`.
    pub fn issue(
        &self,
        host: &str,
        now: Timestamp,
        lifetime: SignedDuration,
    ) -> Result<TlsMaterial, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "atfleet");
        // A CN is limited to 64 characters; the SAN carries the name that matters.
        dn.push(
            DnType::CommonName,
            host.chars().take(64).collect::<String>(),
        );
        params.distinguished_name = dn;
        params.subject_alt_names = vec![match host.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(host.try_into()?),
        }];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = offset(now - SignedDuration::from_mins(5))?;
        params.not_after = offset(now + lifetime)?;
        params.serial_number = Some(serial());
        let issuer = Issuer::new(ca_params(), &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(TlsMaterial {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            ca_pem: self.cert_pem.clone(),
        })
    }
}
