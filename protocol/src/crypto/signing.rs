//! PKAM and data signatures (atprotocol.md §6.2, §6.5, §7.3).
//!
//! - RSA-2048: RSASSA-PKCS1-v1_5 over SHA-256 (default) or SHA-512, signature as standard base64.
//! - ECC secp256r1 (PKAM only): public key as a hex SEC1 point; signature is base64 of the ASCII
//!   lowercase hex of r‖s (each 32 bytes), always over SHA-256.
//! - ML-DSA-65 (PKAM only, `mldsa65`): see [`super::mldsa`].
//!
//! The server signing key (pol proofs, `dataSignature`) is RSA with SHA-256: see [`sign_data`].

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use p256::ecdsa::signature::{Signer, Verifier};
use rsa::pkcs1v15;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Sha256, Sha512};

use super::error::CryptoError;
use super::mldsa::{MlDsaPublicKey, MlDsaSigner};
use super::rsa_keys::{private_key_from_b64, public_key_from_b64};

pub use p256::ecdsa::{SigningKey as EccSigningKey, VerifyingKey as EccVerifyingKey};

/// `signingAlgo` of a `pkam:` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SigningAlgo {
    #[default]
    Rsa2048,
    EccSecp256r1,
    MlDsa65,
}

impl SigningAlgo {
    pub const fn wire_name(self) -> &'static str {
        match self {
            Self::Rsa2048 => "rsa2048",
            Self::EccSecp256r1 => "ecc_secp256r1",
            Self::MlDsa65 => "mldsa65",
        }
    }
}

impl fmt::Display for SigningAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire_name())
    }
}

impl FromStr for SigningAlgo {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "rsa2048" => Ok(Self::Rsa2048),
            "ecc_secp256r1" => Ok(Self::EccSecp256r1),
            "mldsa65" => Ok(Self::MlDsa65),
            _ => Err(CryptoError::UnknownAlgo {
                what: "signingAlgo",
                value: s.to_owned(),
            }),
        }
    }
}

/// `hashingAlgo` of a `pkam:` command (ignored for ECC, which always hashes with SHA-256).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum HashingAlgo {
    #[default]
    Sha256,
    Sha512,
}

impl HashingAlgo {
    pub const fn wire_name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }
}

impl fmt::Display for HashingAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire_name())
    }
}

impl FromStr for HashingAlgo {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "sha256" => Ok(Self::Sha256),
            "sha512" => Ok(Self::Sha512),
            _ => Err(CryptoError::UnknownAlgo {
                what: "hashingAlgo",
                value: s.to_owned(),
            }),
        }
    }
}

/// A private key that can answer a PKAM challenge.
#[derive(Clone)]
pub enum PkamSigner {
    // Boxed: an RSA key is several times the size of an ECC one.
    Rsa(Box<RsaPrivateKey>),
    Ecc(EccSigningKey),
    MlDsa(Box<MlDsaSigner>),
}

// Hand-written so private key material never reaches a log.
impl fmt::Debug for PkamSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PkamSigner({})", self.algo())
    }
}

impl PkamSigner {
    /// Parses a private key in the encoding of its algorithm: base64 PKCS#8 for RSA, hex scalar for ECC,
    /// base64 seed for ML-DSA.
    pub fn from_encoded(algo: SigningAlgo, text: &str) -> Result<Self, CryptoError> {
        match algo {
            SigningAlgo::Rsa2048 => Ok(Self::Rsa(Box::new(private_key_from_b64(text)?))),
            SigningAlgo::EccSecp256r1 => {
                let bytes = hex::decode(text.trim()).map_err(|_| CryptoError::Hex {
                    what: "ECC private key",
                })?;
                EccSigningKey::from_slice(&bytes)
                    .map(Self::Ecc)
                    .map_err(|e| CryptoError::KeyEncoding {
                        what: "ECC private",
                        reason: e.to_string(),
                    })
            }
            SigningAlgo::MlDsa65 => Ok(Self::MlDsa(Box::new(MlDsaSigner::from_b64(text)?))),
        }
    }

    pub fn rsa(key: RsaPrivateKey) -> Self {
        Self::Rsa(Box::new(key))
    }

    /// Generates a fresh ECC secp256r1 signer.
    pub fn generate_ecc() -> Self {
        Self::Ecc(EccSigningKey::random(&mut rand::rngs::OsRng))
    }

    /// Generates a fresh ML-DSA-65 signer.
    pub fn generate_mldsa() -> Self {
        Self::MlDsa(Box::new(MlDsaSigner::generate()))
    }

    pub fn algo(&self) -> SigningAlgo {
        match self {
            Self::Rsa(_) => SigningAlgo::Rsa2048,
            Self::Ecc(_) => SigningAlgo::EccSecp256r1,
            Self::MlDsa(_) => SigningAlgo::MlDsa65,
        }
    }

    pub fn public_key(&self) -> PkamPublicKey {
        match self {
            Self::Rsa(key) => PkamPublicKey::Rsa(key.to_public_key()),
            Self::Ecc(key) => PkamPublicKey::Ecc(*key.verifying_key()),
            Self::MlDsa(key) => PkamPublicKey::MlDsa(Box::new(key.public_key())),
        }
    }

    /// Signs `data` (the challenge text) and returns the signature as it goes after `pkam:`.
    /// `hashing` only matters for RSA.
    pub fn sign(&self, hashing: HashingAlgo, data: &[u8]) -> String {
        match self {
            Self::Rsa(key) => rsa_sign(key, hashing, data),
            Self::Ecc(key) => {
                let sig: p256::ecdsa::Signature = key.sign(data);
                B64.encode(hex::encode(sig.to_bytes()))
            }
            Self::MlDsa(key) => key.sign(data),
        }
    }
}

/// A public key that verifies PKAM signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PkamPublicKey {
    Rsa(RsaPublicKey),
    Ecc(EccVerifyingKey),
    MlDsa(Box<MlDsaPublicKey>),
}

impl PkamPublicKey {
    /// Parses a stored public key in its algorithm's encoding: base64 SPKI DER for RSA, hex SEC1 point
    /// (compressed or uncompressed) for ECC, base64 FIPS 204 encoding for ML-DSA.
    pub fn from_encoded(algo: SigningAlgo, text: &str) -> Result<Self, CryptoError> {
        match algo {
            SigningAlgo::Rsa2048 => Ok(Self::Rsa(public_key_from_b64(text)?)),
            SigningAlgo::EccSecp256r1 => {
                let bytes = hex::decode(text.trim()).map_err(|_| CryptoError::Hex {
                    what: "ECC public key",
                })?;
                EccVerifyingKey::from_sec1_bytes(&bytes)
                    .map(Self::Ecc)
                    .map_err(|e| CryptoError::KeyEncoding {
                        what: "ECC public",
                        reason: e.to_string(),
                    })
            }
            SigningAlgo::MlDsa65 => Ok(Self::MlDsa(Box::new(MlDsaPublicKey::from_b64(text)?))),
        }
    }

    /// The stored form: base64 SPKI for RSA, lowercase hex uncompressed point (`04…`) for ECC.
    pub fn to_encoded(&self) -> Result<String, CryptoError> {
        match self {
            Self::Rsa(key) => super::rsa_keys::public_key_to_b64(key),
            Self::Ecc(key) => Ok(hex::encode(key.to_encoded_point(false).as_bytes())),
            Self::MlDsa(key) => Ok(key.to_b64()),
        }
    }

    pub fn algo(&self) -> SigningAlgo {
        match self {
            Self::Rsa(_) => SigningAlgo::Rsa2048,
            Self::Ecc(_) => SigningAlgo::EccSecp256r1,
            Self::MlDsa(_) => SigningAlgo::MlDsa65,
        }
    }

    /// Verifies a `pkam:` signature (base64 text) over `data`.
    pub fn verify(
        &self,
        hashing: HashingAlgo,
        data: &[u8],
        signature_b64: &str,
    ) -> Result<(), CryptoError> {
        let raw = B64
            .decode(signature_b64.trim())
            .map_err(|_| CryptoError::Base64 { what: "signature" })?;
        match self {
            Self::MlDsa(key) => key.verify_raw(data, &raw),
            Self::Rsa(key) => rsa_verify(key, hashing, data, &raw),
            Self::Ecc(key) => {
                let sig = ecc_signature_from_ascii_hex(&raw)?;
                key.verify(data, &sig)
                    .map_err(|_| CryptoError::BadSignature)
            }
        }
    }
}

/// Signs with the server signing key or an encryption key: RSA PKCS#1 v1.5 over SHA-256, base64.
/// Used for pol proofs and public-data `dataSignature`.
pub fn sign_data(key: &RsaPrivateKey, data: &[u8]) -> String {
    rsa_sign(key, HashingAlgo::Sha256, data)
}

/// Verifies an RSA-SHA256 base64 signature made by [`sign_data`] (pol, `dataSignature`).
pub fn verify_data_signature(
    key: &RsaPublicKey,
    data: &[u8],
    signature_b64: &str,
) -> Result<(), CryptoError> {
    let raw = B64
        .decode(signature_b64.trim())
        .map_err(|_| CryptoError::Base64 { what: "signature" })?;
    rsa_verify(key, HashingAlgo::Sha256, data, &raw)
}

fn rsa_sign(key: &RsaPrivateKey, hashing: HashingAlgo, data: &[u8]) -> String {
    // Blinded signing: same (deterministic) signature, less timing leakage of the private key.
    let rng = &mut rand::rngs::OsRng;
    let sig = match hashing {
        HashingAlgo::Sha256 => pkcs1v15::SigningKey::<Sha256>::new(key.clone())
            .sign_with_rng(rng, data)
            .to_vec(),
        HashingAlgo::Sha512 => pkcs1v15::SigningKey::<Sha512>::new(key.clone())
            .sign_with_rng(rng, data)
            .to_vec(),
    };
    B64.encode(sig)
}

fn rsa_verify(
    key: &RsaPublicKey,
    hashing: HashingAlgo,
    data: &[u8],
    raw: &[u8],
) -> Result<(), CryptoError> {
    let sig = pkcs1v15::Signature::try_from(raw)
        .map_err(|e| CryptoError::MalformedSignature(e.to_string()))?;
    let outcome = match hashing {
        HashingAlgo::Sha256 => {
            pkcs1v15::VerifyingKey::<Sha256>::new(key.clone()).verify(data, &sig)
        }
        HashingAlgo::Sha512 => {
            pkcs1v15::VerifyingKey::<Sha512>::new(key.clone()).verify(data, &sig)
        }
    };
    outcome.map_err(|_| CryptoError::BadSignature)
}

/// Decodes the ASCII hex of r‖s. The two halves are split evenly and each left-padded to 32 bytes, so
/// an encoder that dropped leading zeros of both halves alike still parses.
fn ecc_signature_from_ascii_hex(raw: &[u8]) -> Result<p256::ecdsa::Signature, CryptoError> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| CryptoError::MalformedSignature("ECC signature is not ASCII hex".into()))?
        .trim();
    // Checked before splitting: a multi-byte character must not reach `split_at`.
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CryptoError::Hex {
            what: "ECC signature",
        });
    }
    if text.len() % 2 != 0 || text.is_empty() || text.len() > 128 {
        return Err(CryptoError::MalformedSignature(format!(
            "ECC signature hex has length {}",
            text.len()
        )));
    }
    let (r_hex, s_hex) = text.split_at(text.len() / 2);
    let mut bytes = [0u8; 64];
    for (half, out) in [(r_hex, 0usize), (s_hex, 32usize)] {
        let padded = format!("{half:0>64}");
        let decoded = hex::decode(&padded).map_err(|_| CryptoError::Hex {
            what: "ECC signature",
        })?;
        bytes
            .get_mut(out..out + 32)
            .ok_or_else(|| CryptoError::MalformedSignature("ECC signature too long".into()))?
            .copy_from_slice(&decoded);
    }
    p256::ecdsa::Signature::from_slice(&bytes)
        .map_err(|e| CryptoError::MalformedSignature(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algo_wire_names_round_trip() {
        for algo in [
            SigningAlgo::Rsa2048,
            SigningAlgo::EccSecp256r1,
            SigningAlgo::MlDsa65,
        ] {
            assert_eq!(algo.wire_name().parse::<SigningAlgo>().unwrap(), algo);
        }
        for algo in [HashingAlgo::Sha256, HashingAlgo::Sha512] {
            assert_eq!(algo.to_string().parse::<HashingAlgo>().unwrap(), algo);
        }
        assert!("dsa".parse::<SigningAlgo>().is_err());
    }

    proptest::proptest! {
        /// Keys and signatures from the network are parsed without panicking.
        #[test]
        fn untrusted_text_never_panics(text in "\\PC{0,200}", raw in proptest::collection::vec(proptest::num::u8::ANY, 0..140)) {
            for algo in [SigningAlgo::Rsa2048, SigningAlgo::EccSecp256r1, SigningAlgo::MlDsa65] {
                let _ = PkamPublicKey::from_encoded(algo, &text);
                let _ = PkamSigner::from_encoded(algo, &text);
            }
            let _ = ecc_signature_from_ascii_hex(&raw);
            let _ = ecc_signature_from_ascii_hex(text.as_bytes());
            let key = PkamSigner::generate_ecc().public_key();
            let _ = key.verify(HashingAlgo::Sha256, b"c", &text);
            let _ = key.verify(HashingAlgo::Sha256, b"c", &B64.encode(&raw));
        }
    }

    #[test]
    fn debug_output_has_no_key_material() {
        let signer = PkamSigner::generate_ecc();
        assert_eq!(format!("{signer:?}"), "PkamSigner(ecc_secp256r1)");
    }

    #[test]
    fn ecc_sign_verify_and_reject() {
        let signer = PkamSigner::generate_ecc();
        let public = signer.public_key();
        let encoded = public.to_encoded().unwrap();
        assert!(encoded.starts_with("04") && encoded.len() == 130);
        let parsed = PkamPublicKey::from_encoded(SigningAlgo::EccSecp256r1, &encoded).unwrap();
        let sig = signer.sign(HashingAlgo::Sha512, b"challenge");
        parsed
            .verify(HashingAlgo::Sha256, b"challenge", &sig)
            .unwrap();
        assert!(matches!(
            parsed.verify(HashingAlgo::Sha256, b"other", &sig),
            Err(CryptoError::BadSignature)
        ));
        assert!(parsed.verify(HashingAlgo::Sha256, b"x", "!!").is_err());
        assert!(parsed
            .verify(HashingAlgo::Sha256, b"x", &B64.encode("zz"))
            .is_err());
    }
}

#[cfg(test)]
mod mldsa_tests {
    use super::*;

    #[test]
    fn mldsa_through_the_pkam_types() {
        let signer = PkamSigner::generate_mldsa();
        assert_eq!(signer.algo(), SigningAlgo::MlDsa65);
        let encoded = signer.public_key().to_encoded().unwrap();
        let public = PkamPublicKey::from_encoded(SigningAlgo::MlDsa65, &encoded).unwrap();
        // hashingAlgo does not apply to ML-DSA, whatever the command says.
        let sig = signer.sign(HashingAlgo::Sha512, b"challenge");
        public
            .verify(HashingAlgo::Sha256, b"challenge", &sig)
            .unwrap();
        assert!(matches!(
            public.verify(HashingAlgo::Sha256, b"other", &sig),
            Err(CryptoError::BadSignature)
        ));
        // An RSA or ECC key never verifies as ML-DSA.
        let ecc = PkamSigner::generate_ecc()
            .public_key()
            .to_encoded()
            .unwrap();
        assert!(PkamPublicKey::from_encoded(SigningAlgo::MlDsa65, &ecc).is_err());
    }
}
