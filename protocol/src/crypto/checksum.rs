use md5::{Digest, Md5};

/// `pubKeyCS` (atprotocol.md §7.1/§7.2): lowercase hex MD5 of the UTF-8 bytes of the recipient's public
/// key exactly as published (the base64 SubjectPublicKeyInfo text), not of the decoded DER.
pub fn pub_key_cs(public_key_b64: &str) -> String {
    hex::encode(Md5::digest(public_key_b64.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_of_text() {
        assert_eq!(pub_key_cs(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(pub_key_cs("abc"), "900150983cd24fb0d6963f7d28e17f72");
    }
}
