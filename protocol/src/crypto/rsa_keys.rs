//! RSA key pairs and their wire encodings: base64 DER SubjectPublicKeyInfo for public keys and base64
//! DER PKCS#8 for private keys (atprotocol.md §7.1). PKCS#1 DER is accepted on input because the
//! Python SDK loads it too.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use num_bigint_dig::RandPrime;
use rand::rngs::OsRng;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::BigUint;

pub use rsa::{RsaPrivateKey, RsaPublicKey};

use super::error::CryptoError;

/// Modulus size every atProtocol client generates.
const RSA_BITS: usize = 2048;
/// Public exponent every atProtocol key uses.
const RSA_EXPONENT: u32 = 65_537;
/// Prime draws before giving up; a draw fails with probability about 2/65537.
const MAX_ATTEMPTS: usize = 16;

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
    ///
    /// The two 1024-bit primes are searched for on two threads (prime search is nearly all of
    /// the cost, and an atserver's first start waits for it); the rsa crate then assembles and
    /// validates the key from them.
    pub fn generate() -> Result<Self, CryptoError> {
        let e = BigUint::from(RSA_EXPONENT);
        for _ in 0..MAX_ATTEMPTS {
            let (p, q) = two_primes(RSA_BITS / 2)?;
            // gen_prime sets each prime's top two bits, so the product has exactly RSA_BITS
            // bits; checked anyway because a shorter modulus would be a weaker key.
            if p == q || (&p * &q).bits() != RSA_BITS {
                continue;
            }
            // Fails when e is not invertible modulo lcm(p-1, q-1): draw new primes.
            if let Ok(private) = RsaPrivateKey::from_p_q(p, q, e.clone()) {
                return Ok(Self { private });
            }
        }
        Err(CryptoError::KeyGeneration(
            "no valid RSA key after repeated prime draws".into(),
        ))
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

/// Two random primes of `bits` bits each, searched for concurrently.
fn two_primes(bits: usize) -> Result<(BigUint, BigUint), CryptoError> {
    let failed = |what: &str| CryptoError::KeyGeneration(format!("prime search thread {what}"));
    std::thread::scope(|scope| {
        let other = std::thread::Builder::new()
            .name("rsa-prime".into())
            .spawn_scoped(scope, || OsRng.gen_prime(bits))
            .map_err(|_| failed("could not start"))?;
        let p = OsRng.gen_prime(bits);
        let q = other.join().map_err(|_| failed("panicked"))?;
        Ok((p, q))
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{sign_data, verify_data_signature};
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};

    #[test]
    fn generated_key_is_rsa_2048_with_e_65537() {
        let pair = RsaKeyPair::generate().unwrap();
        let private = pair.private_key();
        assert_eq!(private.n().bits(), RSA_BITS);
        assert_eq!(private.e(), &BigUint::from(65_537u32));
        assert_eq!(private.primes().len(), 2);
        assert_ne!(private.primes()[0], private.primes()[1]);
        private.validate().unwrap();
    }

    #[test]
    fn generated_key_signs_and_verifies_after_encoding_round_trip() {
        let pair = RsaKeyPair::generate().unwrap();
        let private = RsaKeyPair::from_private_b64(&pair.private_b64().unwrap()).unwrap();
        let public = public_key_from_b64(&pair.public_b64().unwrap()).unwrap();
        assert_eq!(public, pair.public_key());
        let signature = sign_data(private.private_key(), b"challenge");
        verify_data_signature(&public, b"challenge", &signature).unwrap();
        assert!(verify_data_signature(&public, b"other", &signature).is_err());
    }

    #[test]
    fn two_generated_keys_differ() {
        let a = RsaKeyPair::generate().unwrap();
        let b = RsaKeyPair::generate().unwrap();
        assert_ne!(a.public_key(), b.public_key());
    }
}
