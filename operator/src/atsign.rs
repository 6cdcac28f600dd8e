//! The atSign grammar the CRD admits (the CEL rule on `spec.atSign` says the same thing).

/// Characters the directory and atServers reject in an atSign name.
const RESERVED: &str = "@.!*'`();:&=+$,/?#[]{}";
const MAX_CHARS: usize = 55;

/// Why a string is not a canonical atSign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtSignError {
    #[error("an atSign starts with '@'")]
    MissingAt,
    #[error("an atSign has 1 to {MAX_CHARS} characters after '@'")]
    Length,
    #[error("an atSign is lower-case")]
    UpperCase,
    #[error("character {0:?} is not allowed in an atSign")]
    Forbidden(char),
}

/// Checks that `s` is an atSign in canonical form: `@`, then 1–55 characters that are not
/// upper-case ASCII, reserved punctuation, dots, whitespace or control characters.
pub fn validate(s: &str) -> Result<(), AtSignError> {
    let name = s.strip_prefix('@').ok_or(AtSignError::MissingAt)?;
    let count = name.chars().count();
    if count == 0 || count > MAX_CHARS {
        return Err(AtSignError::Length);
    }
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            return Err(AtSignError::UpperCase);
        }
        if RESERVED.contains(c) || c.is_whitespace() || c.is_control() {
            return Err(AtSignError::Forbidden(c));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_canonical_forms() {
        for ok in [
            "@alice",
            "@a",
            "@alice_01-x",
            "@alice🛠",
            &format!("@{}", "a".repeat(55)),
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_non_canonical_forms() {
        assert_eq!(validate("alice"), Err(AtSignError::MissingAt));
        assert_eq!(validate("@"), Err(AtSignError::Length));
        assert_eq!(
            validate(&format!("@{}", "a".repeat(56))),
            Err(AtSignError::Length)
        );
        assert_eq!(validate("@Alice"), Err(AtSignError::UpperCase));
        assert_eq!(validate("@al.ice"), Err(AtSignError::Forbidden('.')));
        assert_eq!(validate("@al ice"), Err(AtSignError::Forbidden(' ')));
        assert_eq!(validate("@al@ice"), Err(AtSignError::Forbidden('@')));
        assert_eq!(
            validate("@a\u{0007}"),
            Err(AtSignError::Forbidden('\u{0007}'))
        );
    }
}
