//! ML-DSA-65 (FIPS 204) PKAM keys, `signingAlgo:mldsa65`.
//!
//! Encodings (all standard base64, like the RSA keys beside them):
//! - public key: the 1,952-byte FIPS 204 `pkEncode` output, as stored in
//!   `privatekey:at_pkam_publickey` or an enrollment's `apkamPublicKey`;
//! - private key: the 32-byte seed ξ of FIPS 204 `KeyGen_internal` (the expanded 4,032-byte form
//!   is not accepted: decoding it can fail in ways the crate does not report);
//! - signature: the 3,309-byte FIPS 204 signature.
//!
//! Signatures are pure ML-DSA with an empty context string over the challenge bytes as sent:
//! ML-DSA hashes the message itself (SHAKE256), so `hashingAlgo` does not apply, as for ECC.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ml_dsa::{EncodedVerifyingKey, MlDsa65, Seed, Signature, SigningKey, VerifyingKey};
use rand::RngCore;

use super::error::CryptoError;

/// Length of an encoded ML-DSA-65 public key.
pub const PUBLIC_KEY_LEN: usize = 1952;
/// Length of an ML-DSA-65 signature.
pub const SIGNATURE_LEN: usize = 3309;
/// Length of the private seed.
pub const SEED_LEN: usize = 32;

/// An ML-DSA-65 private key (kept as its seed).
#[derive(Clone)]
pub struct MlDsaSigner {
    key: SigningKey<MlDsa65>,
}

// Hand-written so the seed never reaches a log.
impl fmt::Debug for MlDsaSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MlDsaSigner")
    }
}

impl MlDsaSigner {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let mut seed = [0u8; SEED_LEN];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        Self::from_seed(&seed)
    }

    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let seed = Seed::from(*seed);
        Self {
            key: SigningKey::<MlDsa65>::from_seed(&seed),
        }
    }

    /// Parses the base64 seed.
    pub fn from_b64(text: &str) -> Result<Self, CryptoError> {
        let raw = B64.decode(text.trim()).map_err(|_| CryptoError::Base64 {
            what: "ML-DSA private key",
        })?;
        let seed: [u8; SEED_LEN] =
            raw.as_slice()
                .try_into()
                .map_err(|_| CryptoError::KeyEncoding {
                    what: "ML-DSA private",
                    reason: format!("a seed is {SEED_LEN} bytes, got {}", raw.len()),
                })?;
        Ok(Self::from_seed(&seed))
    }

    /// The base64 seed.
    pub fn to_b64(&self) -> String {
        B64.encode(self.key.to_seed().as_slice())
    }

    pub fn public_key(&self) -> MlDsaPublicKey {
        MlDsaPublicKey {
            key: self.key.expanded_key().verifying_key(),
        }
    }

    /// Signs `data` deterministically with an empty context; base64 of the signature.
    pub fn sign(&self, data: &[u8]) -> String {
        // The only error is a context longer than 255 bytes; ours is empty.
        match self.key.expanded_key().sign_deterministic(data, &[]) {
            Ok(sig) => B64.encode(sig.encode().as_slice()),
            Err(_) => String::new(),
        }
    }
}

/// An ML-DSA-65 public key.
#[derive(Clone, Debug)]
pub struct MlDsaPublicKey {
    key: VerifyingKey<MlDsa65>,
}

// Equal keys have equal encodings (the crate's key type is only PartialEq).
impl PartialEq for MlDsaPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.key.encode() == other.key.encode()
    }
}

impl Eq for MlDsaPublicKey {}

impl MlDsaPublicKey {
    /// Parses the base64 `pkEncode` bytes.
    pub fn from_b64(text: &str) -> Result<Self, CryptoError> {
        let raw = B64.decode(text.trim()).map_err(|_| CryptoError::Base64 {
            what: "ML-DSA public key",
        })?;
        let encoded = EncodedVerifyingKey::<MlDsa65>::try_from(raw.as_slice()).map_err(|_| {
            CryptoError::KeyEncoding {
                what: "ML-DSA public",
                reason: format!("a public key is {PUBLIC_KEY_LEN} bytes, got {}", raw.len()),
            }
        })?;
        Ok(Self {
            key: VerifyingKey::<MlDsa65>::decode(&encoded),
        })
    }

    pub fn to_b64(&self) -> String {
        B64.encode(self.key.encode().as_slice())
    }

    /// Verifies a base64 signature over `data` (empty context).
    pub fn verify(&self, data: &[u8], signature_b64: &str) -> Result<(), CryptoError> {
        let raw = B64
            .decode(signature_b64.trim())
            .map_err(|_| CryptoError::Base64 { what: "signature" })?;
        self.verify_raw(data, &raw)
    }

    /// Verifies the raw signature bytes over `data` (empty context).
    pub fn verify_raw(&self, data: &[u8], raw: &[u8]) -> Result<(), CryptoError> {
        if raw.len() != SIGNATURE_LEN {
            return Err(CryptoError::MalformedSignature(format!(
                "an ML-DSA-65 signature is {SIGNATURE_LEN} bytes, got {}",
                raw.len()
            )));
        }
        let sig = Signature::<MlDsa65>::try_from(raw)
            .map_err(|_| CryptoError::MalformedSignature("not an ML-DSA-65 signature".into()))?;
        if self.key.verify_with_context(data, &[], &sig) {
            Ok(())
        } else {
            Err(CryptoError::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_round_trip_and_sizes() {
        let signer = MlDsaSigner::generate();
        let public = signer.public_key();
        let encoded = public.to_b64();
        assert_eq!(B64.decode(&encoded).unwrap().len(), PUBLIC_KEY_LEN);
        let parsed = MlDsaPublicKey::from_b64(&encoded).unwrap();
        assert_eq!(parsed, public);
        let sig = signer.sign(b"_challenge@alice:1");
        assert_eq!(B64.decode(&sig).unwrap().len(), SIGNATURE_LEN);
        parsed.verify(b"_challenge@alice:1", &sig).unwrap();
        assert!(matches!(
            parsed.verify(b"_challenge@alice:2", &sig),
            Err(CryptoError::BadSignature)
        ));
        let again = MlDsaSigner::from_b64(&signer.to_b64()).unwrap();
        assert_eq!(again.public_key(), public);
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(MlDsaPublicKey::from_b64("AAAA").is_err());
        assert!(MlDsaPublicKey::from_b64("!!").is_err());
        assert!(MlDsaSigner::from_b64(&B64.encode([1u8; 31])).is_err());
        let public = MlDsaSigner::generate().public_key();
        assert!(public.verify(b"x", &B64.encode([0u8; 10])).is_err());
        assert!(public
            .verify(b"x", &B64.encode([0xffu8; SIGNATURE_LEN]))
            .is_err());
    }
}
