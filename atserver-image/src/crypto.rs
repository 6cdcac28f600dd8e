//! The server-side crypto the protocol dictates: CRAM digests, PKAM signature checks (RSA with
//! SHA-256/512 and ECDSA secp256r1), and the server's RSA-2048 signing key pair.
//!
//! A private version while `at_protocol::crypto` lands; it is small on purpose.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rsa::pkcs8::{DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256, Sha512};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CryptoError {
    #[error("bad key encoding")]
    Key,
    #[error("bad signature encoding")]
    Signature,
    #[error("signature does not verify")]
    Mismatch,
    #[error("key generation failed")]
    KeyGen,
}

/// `lowercase_hex(SHA-512(secret ‖ challenge))` (§6.1).
pub fn cram_digest(secret: &str, challenge: &str) -> String {
    let mut h = Sha512::new();
    h.update(secret.as_bytes());
    h.update(challenge.as_bytes());
    hex::encode(h.finalize())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlgo {
    Rsa2048,
    EccSecp256r1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashingAlgo {
    Sha256,
    Sha512,
}

/// Verifies a PKAM signature over `challenge` with the stored public key (§6.2).
pub fn verify_pkam(
    public_key: &str,
    challenge: &str,
    signature_b64: &str,
    signing: SigningAlgo,
    hashing: HashingAlgo,
) -> Result<(), CryptoError> {
    let sig = B64
        .decode(signature_b64.trim())
        .map_err(|_| CryptoError::Signature)?;
    match signing {
        SigningAlgo::Rsa2048 => {
            let der = B64
                .decode(public_key.trim())
                .map_err(|_| CryptoError::Key)?;
            let key = RsaPublicKey::from_public_key_der(&der)
                .or_else(|_| {
                    use rsa::pkcs1::DecodeRsaPublicKey;
                    RsaPublicKey::from_pkcs1_der(&der)
                })
                .map_err(|_| CryptoError::Key)?;
            let res = match hashing {
                HashingAlgo::Sha256 => key.verify(
                    Pkcs1v15Sign::new::<Sha256>(),
                    &Sha256::digest(challenge.as_bytes()),
                    &sig,
                ),
                HashingAlgo::Sha512 => key.verify(
                    Pkcs1v15Sign::new::<Sha512>(),
                    &Sha512::digest(challenge.as_bytes()),
                    &sig,
                ),
            };
            res.map_err(|_| CryptoError::Mismatch)
        }
        SigningAlgo::EccSecp256r1 => {
            use p256::ecdsa::signature::Verifier;
            let point = hex::decode(public_key.trim()).map_err(|_| CryptoError::Key)?;
            let key =
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(|_| CryptoError::Key)?;
            // The signature is the ASCII of a compact hex r‖s.
            let compact = std::str::from_utf8(&sig).map_err(|_| CryptoError::Signature)?;
            let raw = hex::decode(compact.trim()).map_err(|_| CryptoError::Signature)?;
            let signature =
                p256::ecdsa::Signature::from_slice(&raw).map_err(|_| CryptoError::Signature)?;
            key.verify(challenge.as_bytes(), &signature)
                .map_err(|_| CryptoError::Mismatch)
        }
    }
}

/// A fresh RSA-2048 key pair as (base64 SPKI DER public, base64 PKCS#8 DER private).
pub fn generate_rsa_keypair() -> Result<(String, String), CryptoError> {
    let mut rng = rand::thread_rng();
    let private = RsaPrivateKey::new(&mut rng, 2048).map_err(|_| CryptoError::KeyGen)?;
    let public = RsaPublicKey::from(&private);
    let pub_der = public
        .to_public_key_der()
        .map_err(|_| CryptoError::KeyGen)?;
    let priv_der = private.to_pkcs8_der().map_err(|_| CryptoError::KeyGen)?;
    Ok((
        B64.encode(pub_der.as_bytes()),
        B64.encode(priv_der.as_bytes()),
    ))
}

/// RSA-SHA256 PKCS#1 v1.5 signature (base64) with a base64 PKCS#8 private key.
pub fn sign_rsa_sha256(private_key_b64: &str, data: &str) -> Result<String, CryptoError> {
    use rsa::pkcs8::DecodePrivateKey;
    let der = B64
        .decode(private_key_b64.trim())
        .map_err(|_| CryptoError::Key)?;
    let key = RsaPrivateKey::from_pkcs8_der(&der).map_err(|_| CryptoError::Key)?;
    let sig = key
        .sign(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(data.as_bytes()),
        )
        .map_err(|_| CryptoError::KeyGen)?;
    Ok(B64.encode(sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cram_digest_is_sha512_hex() {
        let d = cram_digest("secret", "_a@alice:b");
        assert_eq!(d.len(), 128);
        assert_eq!(d, hex::encode(Sha512::digest(b"secret_a@alice:b")));
    }

    #[test]
    fn ecc_pkam_verifies() {
        use p256::ecdsa::{signature::Signer, Signature, SigningKey};
        let sk = SigningKey::random(&mut rand::thread_rng());
        let pk = hex::encode(sk.verifying_key().to_encoded_point(false).as_bytes());
        let sig: Signature = sk.sign(b"challenge");
        let wire = B64.encode(hex::encode(sig.to_bytes()));
        verify_pkam(
            &pk,
            "challenge",
            &wire,
            SigningAlgo::EccSecp256r1,
            HashingAlgo::Sha256,
        )
        .unwrap();
        assert!(verify_pkam(
            &pk,
            "other",
            &wire,
            SigningAlgo::EccSecp256r1,
            HashingAlgo::Sha256
        )
        .is_err());
    }
}
