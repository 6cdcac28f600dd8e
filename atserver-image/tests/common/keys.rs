//! Client-side key material for tests, made with `at_protocol::crypto`.

use at_protocol::crypto::{AtKeys, HashingAlgo, PkamSigner, RsaKeyPair};

pub struct KeyPair {
    pub public: String,
    pub private: String,
    pair: RsaKeyPair,
}

impl KeyPair {
    fn from_pair(pair: RsaKeyPair) -> KeyPair {
        KeyPair {
            public: pair.public_b64().unwrap(),
            private: pair.private_b64().unwrap(),
            pair,
        }
    }
}

pub fn rsa_keypair() -> KeyPair {
    KeyPair::from_pair(RsaKeyPair::generate().unwrap())
}

/// RSA PKCS#1 v1.5 SHA-256 signature (base64) with a base64 PKCS#8 private key.
pub fn sign(private_b64: &str, data: &str) -> String {
    let pair = RsaKeyPair::from_private_b64(private_b64).unwrap();
    PkamSigner::rsa(pair.private_key().clone()).sign(HashingAlgo::Sha256, data.as_bytes())
}

/// The JSON of an `.atKeys` file for these PKAM and encryption key pairs (atsdk.md §5).
pub fn atkeys_json(atsign: &str, pkam: &KeyPair, enc: &KeyPair) -> String {
    let mut keys = AtKeys::generate().unwrap();
    keys.pkam = pkam.pair.clone();
    keys.encryption = enc.pair.clone();
    keys.to_file(Some(atsign)).unwrap().to_json().unwrap()
}
