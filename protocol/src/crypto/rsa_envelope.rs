//! RSA PKCS#1 v1.5 encryption as clients use it (atprotocol.md §7.1): the input is the UTF-8 text of
//! the plaintext (for an AES key, its base64 text), the output is base64.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rsa::{Pkcs1v15Encrypt, RsaPrivateKey, RsaPublicKey};

use super::error::CryptoError;

pub fn rsa_encrypt_bytes(key: &RsaPublicKey, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    key.encrypt(&mut rand::rngs::OsRng, Pkcs1v15Encrypt, plaintext)
        .map_err(|e| CryptoError::Rsa(e.to_string()))
}

pub fn rsa_decrypt_bytes(key: &RsaPrivateKey, ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    // Blinded, to blunt timing side channels on the private exponent.
    key.decrypt_blinded(&mut rand::rngs::OsRng, Pkcs1v15Encrypt, ciphertext)
        .map_err(|e| CryptoError::Rsa(e.to_string()))
}

/// Encrypts `plaintext`'s UTF-8 bytes and returns standard base64.
pub fn rsa_encrypt(key: &RsaPublicKey, plaintext: &str) -> Result<String, CryptoError> {
    Ok(B64.encode(rsa_encrypt_bytes(key, plaintext.as_bytes())?))
}

/// Decrypts base64 ciphertext and returns the plaintext text.
pub fn rsa_decrypt(key: &RsaPrivateKey, ciphertext_b64: &str) -> Result<String, CryptoError> {
    let ciphertext = B64
        .decode(ciphertext_b64.trim())
        .map_err(|_| CryptoError::Base64 {
            what: "RSA ciphertext",
        })?;
    String::from_utf8(rsa_decrypt_bytes(key, &ciphertext)?).map_err(|_| CryptoError::NotUtf8)
}
