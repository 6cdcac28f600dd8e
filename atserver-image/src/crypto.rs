//! The server's use of `at_protocol::crypto`: PKAM verification with the stored key's algorithm,
//! and the server signing key pair generated at first start (§4.3).

use at_protocol::crypto::{CryptoError, HashingAlgo, PkamPublicKey, RsaKeyPair, SigningAlgo};

pub use at_protocol::crypto::cram_digest;

/// Verifies a PKAM signature over `challenge` with the stored public key (§6.2).
pub fn verify_pkam(
    public_key: &str,
    challenge: &str,
    signature_b64: &str,
    signing: SigningAlgo,
    hashing: HashingAlgo,
) -> Result<(), CryptoError> {
    PkamPublicKey::from_encoded(signing, public_key)?.verify(
        hashing,
        challenge.as_bytes(),
        signature_b64,
    )
}

/// A fresh RSA-2048 key pair as (base64 SPKI DER public, base64 PKCS#8 DER private).
pub fn generate_rsa_keypair() -> Result<(String, String), CryptoError> {
    let pair = RsaKeyPair::generate()?;
    Ok((pair.public_b64()?, pair.private_b64()?))
}
