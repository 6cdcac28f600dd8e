//! RSA key pairs and their wire encodings: base64 DER SubjectPublicKeyInfo for public keys and base64
//! DER PKCS#8 for private keys (atprotocol.md §7.1). PKCS#1 DER is accepted on input because the
//! Python SDK loads it too.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};

pub use rsa::{RsaPrivateKey, RsaPublicKey};

use super::CryptoError;

/// Modulus size every atProtocol client generates.
const RSA_BITS: usize = 2048;

/// An RSA-2048 key pair as used for PKAM, encryption and server signing.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaKeyPair {
    private: RsaPrivateKey,
}

// The rsa crate's Debug prints the private exponent; never let that reach a log.
impl std::fmt::Debug for RsaKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use rsa::traits::PublicKeyParts;
        f.debug_struct("RsaKeyPair")
            .field("bits", &(self.private.size() * 8))
            .finish_non_exhaustive()
    }
}

impl RsaKeyPair {
    /// Generates a fresh 2048-bit key pair with e = 65537.
    pub fn generate() -> Result<Self, CryptoError> {
        let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, RSA_BITS)
            .map_err(|e| CryptoError::KeyGeneration(e.to_string()))?;
        Ok(Self { private })
    }

    pub fn from_private(private: RsaPrivateKey) -> Self {
        Self { private }
    }

    /// Parses the private half (base64 PKCS#8, or PKCS#1) and derives the public half from it.
    pub fn from_private_b64(private_b64: &str) -> Result<Self, CryptoError> {
        Ok(Self {
            private: private_key_from_b64(private_b64)?,
        })
    }

    pub fn private_key(&self) -> &RsaPrivateKey {
        &self.private
    }

    pub fn public_key(&self) -> RsaPublicKey {
        self.private.to_public_key()
    }

    pub fn public_b64(&self) -> Result<String, CryptoError> {
        public_key_to_b64(&self.public_key())
    }

    pub fn private_b64(&self) -> Result<String, CryptoError> {
        private_key_to_b64(&self.private)
    }
}

fn decode_b64(text: &str, what: &'static str) -> Result<Vec<u8>, CryptoError> {
    B64.decode(text.trim())
        .map_err(|_| CryptoError::Base64 { what })
}

/// Parses a base64 DER public key: SubjectPublicKeyInfo first, bare PKCS#1 as fallback.
pub fn public_key_from_b64(text: &str) -> Result<RsaPublicKey, CryptoError> {
    let der = decode_b64(text, "RSA public key")?;
    RsaPublicKey::from_public_key_der(&der)
        .or_else(|spki_err| RsaPublicKey::from_pkcs1_der(&der).map_err(|_| spki_err.to_string()))
        .map_err(|reason| CryptoError::KeyEncoding {
            what: "RSA public",
            reason,
        })
}

/// Parses a base64 DER private key: PKCS#8 first, bare PKCS#1 as fallback.
pub fn private_key_from_b64(text: &str) -> Result<RsaPrivateKey, CryptoError> {
    let der = decode_b64(text, "RSA private key")?;
    RsaPrivateKey::from_pkcs8_der(&der)
        .or_else(|p8_err| RsaPrivateKey::from_pkcs1_der(&der).map_err(|_| p8_err.to_string()))
        .map_err(|reason| CryptoError::KeyEncoding {
            what: "RSA private",
            reason,
        })
}

/// Base64 (standard, padded, no newlines) of the DER SubjectPublicKeyInfo.
pub fn public_key_to_b64(key: &RsaPublicKey) -> Result<String, CryptoError> {
    let doc = key
        .to_public_key_der()
        .map_err(|e| CryptoError::KeyEncoding {
            what: "RSA public",
            reason: e.to_string(),
        })?;
    Ok(B64.encode(doc.as_bytes()))
}

/// Base64 (standard, padded, no newlines) of the DER PKCS#8 PrivateKeyInfo.
pub fn private_key_to_b64(key: &RsaPrivateKey) -> Result<String, CryptoError> {
    let doc = key.to_pkcs8_der().map_err(|e| CryptoError::KeyEncoding {
        what: "RSA private",
        reason: e.to_string(),
    })?;
    Ok(B64.encode(doc.as_bytes()))
}
