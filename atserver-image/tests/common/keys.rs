//! Client-side key material for tests: RSA key pairs, PKAM signatures, and `.atKeys` files
//! (AES-256-CTR, zero IV, PKCS#7) as Atsign's SDKs read them.

use aes::cipher::{KeyIvInit, StreamCipher};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};

pub struct KeyPair {
    pub public: String,
    pub private: String,
}

pub fn rsa_keypair() -> KeyPair {
    let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let public = RsaPublicKey::from(&private);
    KeyPair {
        public: B64.encode(public.to_public_key_der().unwrap().as_bytes()),
        private: B64.encode(private.to_pkcs8_der().unwrap().as_bytes()),
    }
}

pub fn sign(private_b64: &str, data: &str) -> String {
    let key = RsaPrivateKey::from_pkcs8_der(&B64.decode(private_b64).unwrap()).unwrap();
    let sig = key
        .sign(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(data.as_bytes()),
        )
        .unwrap();
    B64.encode(sig)
}

/// AES-256-CTR with a zero IV over PKCS#7-padded UTF-8, base64 out.
pub fn aes_encrypt(key_b64: &str, plain: &str) -> String {
    let key = B64.decode(key_b64).unwrap();
    let mut data = plain.as_bytes().to_vec();
    let pad = 16 - data.len() % 16;
    data.extend(std::iter::repeat_n(pad as u8, pad));
    let mut cipher = ctr::Ctr128BE::<aes::Aes256>::new(key.as_slice().into(), &[0u8; 16].into());
    cipher.apply_keystream(&mut data);
    B64.encode(data)
}

/// The JSON of an `.atKeys` file for atsdk (atsdk.md §5).
pub fn atkeys_json(atsign: &str, pkam: &KeyPair, enc: &KeyPair) -> String {
    let self_key: [u8; 32] = rand::random();
    let self_key = B64.encode(self_key);
    serde_json::json!({
        "selfEncryptionKey": self_key,
        "aesPkamPublicKey": aes_encrypt(&self_key, &pkam.public),
        "aesPkamPrivateKey": aes_encrypt(&self_key, &pkam.private),
        "aesEncryptPublicKey": aes_encrypt(&self_key, &enc.public),
        "aesEncryptPrivateKey": aes_encrypt(&self_key, &enc.private),
        atsign: self_key,
    })
    .to_string()
}
