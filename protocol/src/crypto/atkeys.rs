//! The `.atKeys` file (atprotocol.md §7.3, atsdk.md §5): a JSON object whose four RSA key strings are
//! AES-256-CTR encrypted with the self-encryption key under an all-zero IV. The self-encryption key,
//! the APKAM symmetric key and the enrollment id are stored in clear.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::aes_ctr::{AesKey, Iv};
use super::error::CryptoError;
use super::rsa_keys::RsaKeyPair;

/// The file exactly as stored. Field order on output follows atsdk's writer; fields this type does not
/// know (such as Dart's `"@alice"` copy of the self-encryption key) are kept and written back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AtKeysFile {
    #[serde(rename = "selfEncryptionKey")]
    pub self_encryption_key: String,
    #[serde(rename = "aesPkamPublicKey")]
    pub aes_pkam_public_key: String,
    #[serde(rename = "aesPkamPrivateKey")]
    pub aes_pkam_private_key: String,
    #[serde(rename = "aesEncryptPublicKey")]
    pub aes_encrypt_public_key: String,
    #[serde(rename = "aesEncryptPrivateKey")]
    pub aes_encrypt_private_key: String,
    #[serde(
        rename = "apkamSymmetricKey",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub apkam_symmetric_key: Option<String>,
    #[serde(
        rename = "enrollmentId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enrollment_id: Option<String>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The clear key material of one atSign on one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AtKeys {
    pub pkam: RsaKeyPair,
    pub encryption: RsaKeyPair,
    pub self_encryption_key: AesKey,
    pub apkam_symmetric_key: Option<AesKey>,
    pub enrollment_id: Option<String>,
}

impl AtKeys {
    /// Fresh PKAM and encryption key pairs (RSA-2048) and a fresh self-encryption key.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self {
            pkam: RsaKeyPair::generate()?,
            encryption: RsaKeyPair::generate()?,
            self_encryption_key: AesKey::generate(),
            apkam_symmetric_key: None,
            enrollment_id: None,
        })
    }

    /// Encrypts the key strings for storage. With `atsign` (e.g. `@alice`), also writes Dart's extra
    /// `"@alice": <selfEncryptionKey>` field.
    pub fn to_file(&self, atsign: Option<&str>) -> Result<AtKeysFile, CryptoError> {
        let sek = &self.self_encryption_key;
        let seal = |text: String| sek.encrypt_b64(&Iv::zero(), &text);
        let mut other = serde_json::Map::new();
        if let Some(atsign) = atsign {
            other.insert(atsign.to_owned(), sek.to_b64().into());
        }
        Ok(AtKeysFile {
            self_encryption_key: sek.to_b64(),
            aes_pkam_public_key: seal(self.pkam.public_b64()?),
            aes_pkam_private_key: seal(self.pkam.private_b64()?),
            aes_encrypt_public_key: seal(self.encryption.public_b64()?),
            aes_encrypt_private_key: seal(self.encryption.private_b64()?),
            apkam_symmetric_key: self.apkam_symmetric_key.as_ref().map(AesKey::to_b64),
            enrollment_id: self.enrollment_id.clone(),
            other,
        })
    }
}

impl AtKeysFile {
    /// The conventional file name, e.g. `@alice_key.atKeys`.
    pub fn file_name(atsign: &str) -> String {
        format!("{atsign}_key.atKeys")
    }

    pub fn from_json(text: &str) -> Result<Self, CryptoError> {
        serde_json::from_str(text).map_err(|e| CryptoError::KeysFile(e.to_string()))
    }

    /// JSON with a 4-space indent, as atsdk writes it.
    pub fn to_json(&self) -> Result<String, CryptoError> {
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
        self.serialize(&mut ser)
            .map_err(|e| CryptoError::KeysFile(e.to_string()))?;
        String::from_utf8(out).map_err(|e| CryptoError::KeysFile(e.to_string()))
    }

    pub fn load(path: &Path) -> Result<Self, CryptoError> {
        Self::from_json(&std::fs::read_to_string(path)?)
    }

    /// Writes the file, readable by its owner only (it holds the clear self-encryption key).
    pub fn save(&self, path: &Path) -> Result<(), CryptoError> {
        let json = self.to_json()?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        file.write_all(json.as_bytes())?;
        file.sync_all()?;
        Ok(())
    }

    /// Decrypts the key strings with the file's self-encryption key and parses them.
    pub fn decrypt(&self) -> Result<AtKeys, CryptoError> {
        let sek = AesKey::from_b64(&self.self_encryption_key)?;
        let open = |field: &'static str, text: &str| {
            sek.decrypt_b64(&Iv::zero(), text)
                .map_err(|e| CryptoError::KeysFile(format!("{field}: {e}")))
        };
        // Both halves are stored; the private half is authoritative and the public half must match it.
        let pair = |pub_field, pub_text: &str, priv_field, priv_text: &str| {
            let pair = RsaKeyPair::from_private_b64(&open(priv_field, priv_text)?)?;
            let public = super::rsa_keys::public_key_from_b64(&open(pub_field, pub_text)?)?;
            if public != pair.public_key() {
                return Err(CryptoError::KeysFile(format!(
                    "{pub_field} does not match {priv_field}"
                )));
            }
            Ok(pair)
        };
        Ok(AtKeys {
            pkam: pair(
                "aesPkamPublicKey",
                &self.aes_pkam_public_key,
                "aesPkamPrivateKey",
                &self.aes_pkam_private_key,
            )?,
            encryption: pair(
                "aesEncryptPublicKey",
                &self.aes_encrypt_public_key,
                "aesEncryptPrivateKey",
                &self.aes_encrypt_private_key,
            )?,
            self_encryption_key: sek.clone(),
            apkam_symmetric_key: self
                .apkam_symmetric_key
                .as_deref()
                .map(AesKey::from_b64)
                .transpose()?,
            enrollment_id: self.enrollment_id.clone(),
        })
    }
}
