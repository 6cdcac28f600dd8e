use sha2::{Digest, Sha512};

/// CRAM response (atprotocol.md §6.1): lowercase hex SHA-512 of the secret immediately followed by
/// the challenge (everything the server sent after `data:`), no separator.
pub fn cram_digest(secret: &str, challenge: &str) -> String {
    let mut hasher = Sha512::new();
    hasher.update(secret.as_bytes());
    hasher.update(challenge.as_bytes());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_sha512_of_concatenation() {
        // SHA-512("abc") split across secret and challenge.
        assert_eq!(
            cram_digest("a", "bc"),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
    }
}
