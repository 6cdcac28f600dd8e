//! AES-256-CTR with PKCS#7 padding applied before the counter mode (atprotocol.md §7.1): the Dart
//! `encrypt` package's "SIC" mode, a full 128-bit big-endian counter starting at the IV. Ciphertext
//! length is therefore always a multiple of 16. Keys and IVs travel as base64 text.

use aes::Aes256;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ctr::cipher::{KeyIvInit, StreamCipher};
use rand::RngCore;

use super::error::CryptoError;

type Aes256Ctr = ctr::Ctr128BE<Aes256>;

const BLOCK: usize = 16;

/// A 256-bit AES key (self-encryption key, shared key, APKAM symmetric key).
#[derive(Clone, PartialEq, Eq)]
pub struct AesKey([u8; 32]);

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey(..)")
    }
}

impl AesKey {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| CryptoError::AesKeyLength(bytes.len()))
    }

    pub fn from_b64(text: &str) -> Result<Self, CryptoError> {
        let bytes = B64
            .decode(text.trim())
            .map_err(|_| CryptoError::Base64 { what: "AES key" })?;
        Self::from_bytes(&bytes)
    }

    pub fn to_b64(&self) -> String {
        B64.encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Pads with PKCS#7, then runs CTR from `iv`.
    pub fn encrypt(&self, iv: &Iv, plaintext: &[u8]) -> Vec<u8> {
        let pad = BLOCK - plaintext.len() % BLOCK;
        let mut buf = Vec::with_capacity(plaintext.len() + pad);
        buf.extend_from_slice(plaintext);
        // pad is 1..=16, so the cast cannot truncate.
        buf.resize(plaintext.len() + pad, pad as u8);
        self.apply(iv, &mut buf);
        buf
    }

    /// Runs CTR from `iv`, then checks and strips the PKCS#7 padding.
    pub fn decrypt(&self, iv: &Iv, ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if ciphertext.is_empty() || ciphertext.len() % BLOCK != 0 {
            return Err(CryptoError::CiphertextLength(ciphertext.len()));
        }
        let mut buf = ciphertext.to_vec();
        self.apply(iv, &mut buf);
        let pad = usize::from(*buf.last().ok_or(CryptoError::Padding)?);
        if pad == 0 || pad > BLOCK || pad > buf.len() {
            return Err(CryptoError::Padding);
        }
        let body_len = buf.len() - pad;
        if buf[body_len..].iter().any(|&b| usize::from(b) != pad) {
            return Err(CryptoError::Padding);
        }
        buf.truncate(body_len);
        Ok(buf)
    }

    /// Encrypts the UTF-8 text and returns standard base64.
    pub fn encrypt_b64(&self, iv: &Iv, plaintext: &str) -> String {
        B64.encode(self.encrypt(iv, plaintext.as_bytes()))
    }

    /// Decodes base64 ciphertext, decrypts it and returns the UTF-8 text.
    pub fn decrypt_b64(&self, iv: &Iv, ciphertext_b64: &str) -> Result<String, CryptoError> {
        let ciphertext = B64
            .decode(ciphertext_b64.trim())
            .map_err(|_| CryptoError::Base64 {
                what: "AES ciphertext",
            })?;
        String::from_utf8(self.decrypt(iv, &ciphertext)?).map_err(|_| CryptoError::NotUtf8)
    }

    fn apply(&self, iv: &Iv, buf: &mut [u8]) {
        let mut cipher = Aes256Ctr::new(&self.0.into(), &iv.0.into());
        cipher.apply_keystream(buf);
    }
}

/// The 16-byte initial counter block. Legacy data and `.atKeys` fields use all zeros; current clients
/// send a random IV as base64 in the `ivNonce` metadata field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Iv([u8; 16]);

impl Iv {
    /// The all-zero IV used when `ivNonce` is absent, for `.atKeys` fields and APKAM key transfer.
    pub const fn zero() -> Self {
        Self([0u8; 16])
    }

    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        <[u8; 16]>::try_from(bytes)
            .map(Self)
            .map_err(|_| CryptoError::IvLength(bytes.len()))
    }

    /// Parses an `ivNonce` value.
    pub fn from_b64(text: &str) -> Result<Self, CryptoError> {
        let bytes = B64
            .decode(text.trim())
            .map_err(|_| CryptoError::Base64 { what: "IV" })?;
        Self::from_bytes(&bytes)
    }

    /// The IV named by optional `ivNonce` metadata: zero when absent (atprotocol.md §7.2).
    pub fn from_iv_nonce(iv_nonce: Option<&str>) -> Result<Self, CryptoError> {
        iv_nonce.map_or(Ok(Self::zero()), Self::from_b64)
    }

    pub fn to_b64(&self) -> String {
        B64.encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_pads_to_block_multiple() {
        let key = AesKey::generate();
        let iv = Iv::random();
        for len in [0usize, 1, 15, 16, 17, 100] {
            let text = "x".repeat(len);
            let ct = key.encrypt(&iv, text.as_bytes());
            assert_eq!(ct.len(), (len / 16 + 1) * 16);
            assert_eq!(key.decrypt(&iv, &ct).unwrap(), text.as_bytes());
        }
    }

    proptest::proptest! {
        #[test]
        fn round_trip_any_bytes(
            key in proptest::array::uniform32(proptest::num::u8::ANY),
            iv in proptest::array::uniform16(proptest::num::u8::ANY),
            text in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        ) {
            let (key, iv) = (AesKey(key), Iv(iv));
            let ct = key.encrypt(&iv, &text);
            proptest::prop_assert_eq!(ct.len() % 16, 0);
            proptest::prop_assert_eq!(key.decrypt(&iv, &ct).unwrap(), text);
        }

        #[test]
        fn decrypting_garbage_never_panics(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..100),
            text in "\\PC{0,60}",
        ) {
            let key = AesKey([9; 32]);
            let _ = key.decrypt(&Iv::zero(), &data);
            let _ = key.decrypt_b64(&Iv::zero(), &text);
            let _ = Iv::from_b64(&text);
            let _ = AesKey::from_b64(&text);
        }
    }

    #[test]
    fn wrong_lengths_are_errors_not_panics() {
        let key = AesKey::generate();
        assert!(matches!(
            key.decrypt(&Iv::zero(), &[1, 2, 3]),
            Err(CryptoError::CiphertextLength(3))
        ));
        assert!(key.decrypt(&Iv::zero(), &[]).is_err());
        assert!(AesKey::from_bytes(&[0; 16]).is_err());
        assert!(Iv::from_b64("AAAA").is_err());
        assert!(AesKey::from_b64("not base64!").is_err());
    }
}
