use thiserror::Error;

/// Every way a protocol crypto operation can fail. Messages never include key material.
#[derive(Debug, Error)]
pub enum CryptoError {
    #[error("invalid base64 in {what}")]
    Base64 { what: &'static str },
    #[error("invalid hex in {what}")]
    Hex { what: &'static str },
    #[error("invalid {what} key encoding: {reason}")]
    KeyEncoding { what: &'static str, reason: String },
    #[error("AES key must be 32 bytes, got {0}")]
    AesKeyLength(usize),
    #[error("AES IV must be 16 bytes, got {0}")]
    IvLength(usize),
    #[error("ciphertext length {0} is not a positive multiple of 16")]
    CiphertextLength(usize),
    #[error("bad PKCS#7 padding (wrong key or IV?)")]
    Padding,
    #[error("decrypted text is not UTF-8 (wrong key or IV?)")]
    NotUtf8,
    #[error("RSA operation failed: {0}")]
    Rsa(String),
    #[error("RSA key generation failed: {0}")]
    KeyGeneration(String),
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("unknown {what} `{value}`")]
    UnknownAlgo { what: &'static str, value: String },
    #[error("key type does not match signing algorithm {0}")]
    AlgoMismatch(&'static str),
    #[error("keys file: {0}")]
    KeysFile(String),
    #[error("keys file I/O: {0}")]
    Io(#[from] std::io::Error),
}
