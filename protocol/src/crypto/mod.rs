//! The cryptography the atProtocol dictates, sans-IO (apart from reading and writing `.atKeys` files).
//!
//! Every construction here mirrors what the reference clients put on the wire (atprotocol.md §6–7):
//! CRAM digests, PKAM (RSA, ECC, ML-DSA-65) and data signatures, RSA PKCS#1 v1.5 envelopes, AES-256-CTR with PKCS#7 padding,
//! key encodings, the public-key checksum and the `.atKeys` file.

mod aes_ctr;
mod atkeys;
mod checksum;
mod cram;
mod error;
mod mldsa;
mod rsa_envelope;
mod rsa_keys;
mod signing;

pub use aes_ctr::{AesKey, Iv};
pub use atkeys::{AtKeys, AtKeysFile};
pub use checksum::pub_key_cs;
pub use cram::cram_digest;
pub use error::CryptoError;
pub use mldsa::{MlDsaPublicKey, MlDsaSigner};
pub use rsa_envelope::{rsa_decrypt, rsa_decrypt_bytes, rsa_encrypt, rsa_encrypt_bytes};
pub use rsa_keys::{
    private_key_from_b64, private_key_to_b64, public_key_from_b64, public_key_to_b64, RsaKeyPair,
    RsaPrivateKey, RsaPublicKey,
};
pub use signing::{
    sign_data, verify_data_signature, EccSigningKey, EccVerifyingKey, HashingAlgo, PkamPublicKey,
    PkamSigner, SigningAlgo,
};
