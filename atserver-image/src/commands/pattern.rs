//! The one place client-supplied regular expressions (scan, sync, stats, notify:list, monitor)
//! are compiled, so every verb answers a bad or oversized pattern the same way.

use regex::{Regex, RegexBuilder};

use crate::error::AtError;

/// Compiled-program bound for a client's pattern: far above any key filter clients send, far
/// below what would let one command make the server build a huge automaton.
const SIZE_LIMIT: usize = 1 << 20;

/// Compiles a client's pattern; a bad one is a syntax error (AT0003 "invalid regex").
pub fn compile(pattern: &str) -> Result<Regex, AtError> {
    RegexBuilder::new(pattern)
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|_| AtError::syntax("invalid regex"))
}

/// [`compile`] for an optional pattern.
pub fn compile_optional(pattern: Option<&str>) -> Result<Option<Regex>, AtError> {
    pattern.map(compile).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_and_refuses() {
        assert!(compile(r"^phone\.wavi@")
            .unwrap()
            .is_match("phone.wavi@alice"));
        assert!(compile("(unclosed").is_err());
        assert!(compile(r"\w{1000}{1000}").is_err());
        assert!(compile_optional(None).unwrap().is_none());
    }
}
