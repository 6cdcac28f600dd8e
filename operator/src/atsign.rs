//! The atSign an `Atsign` may name: exactly the canonical form of the protocol's own grammar
//! (`at_protocol::AtSign`), so what the CRD admits, what the directory stores and what the
//! atServer is started with are the same string. The CEL rule on `spec.atSign` says the same
//! thing for ASCII; non-ASCII upper case is caught here.

use at_protocol::{AtSign, AtSignError as GrammarError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtSignError {
    #[error("an atSign starts with '@'")]
    MissingAt,
    #[error(transparent)]
    Grammar(#[from] GrammarError),
    #[error("not in canonical form; write it as {0:?} (lower case, no dots)")]
    NotCanonical(String),
}

/// Checks that `s` is an atSign in canonical form.
pub fn validate(s: &str) -> Result<(), AtSignError> {
    if !s.starts_with('@') {
        return Err(AtSignError::MissingAt);
    }
    let parsed = AtSign::parse(s)?;
    if parsed.as_str() != s {
        return Err(AtSignError::NotCanonical(parsed.as_str().to_owned()));
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
        assert_eq!(
            validate("@"),
            Err(AtSignError::Grammar(GrammarError::Empty))
        );
        assert_eq!(
            validate(&format!("@{}", "a".repeat(56))),
            Err(AtSignError::Grammar(GrammarError::TooLong))
        );
        assert_eq!(
            validate("@Alice"),
            Err(AtSignError::NotCanonical("@alice".into()))
        );
        assert_eq!(
            validate("@Ärger"),
            Err(AtSignError::NotCanonical("@ärger".into()))
        );
        assert_eq!(
            validate("@al.ice"),
            Err(AtSignError::NotCanonical("@alice".into()))
        );
        assert_eq!(
            validate("@al ice"),
            Err(AtSignError::Grammar(GrammarError::WhitespaceOrControl))
        );
        assert_eq!(
            validate("@al@ice"),
            Err(AtSignError::Grammar(GrammarError::ReservedChar('@')))
        );
    }
}
