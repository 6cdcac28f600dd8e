//! atSigns (`@alice`), normalised the way the reference `fixAtSign` does (§4.2).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest accepted name (without the `@`), in characters (§4.1: 1–55).
pub const MAX_ATSIGN_CHARS: usize = 55;

/// Characters that may never appear in an atSign name (§4.2).
const RESERVED: &[char] = &[
    '!', '*', '\'', '`', '(', ')', ';', ':', '&', '=', '+', '$', ',', '/', '?', '#', '[', ']', '{',
    '}', '@',
];

/// Why a string is not an atSign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtSignError {
    #[error("invalid atSign: empty")]
    Empty,
    #[error("invalid atSign: longer than {MAX_ATSIGN_CHARS} characters")]
    TooLong,
    #[error("invalid atSign: contains reserved character {0:?}")]
    ReservedChar(char),
    #[error("invalid atSign: contains whitespace or a control character")]
    WhitespaceOrControl,
}

/// A normalised atSign: lower-case, exactly one leading `@`, no dots in the name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AtSign(String);

impl AtSign {
    /// Normalises and validates `input` (`Alice`, `@alice`, `@Colin.Constable` are all fine).
    pub fn parse(input: &str) -> Result<AtSign, AtSignError> {
        let name = input.strip_prefix('@').unwrap_or(input);
        let mut normalised = String::with_capacity(name.len() + 1);
        normalised.push('@');
        let mut chars = 0usize;
        for c in name.chars() {
            if c == '.' {
                continue;
            }
            if c.is_whitespace() || c.is_control() {
                return Err(AtSignError::WhitespaceOrControl);
            }
            if RESERVED.contains(&c) {
                return Err(AtSignError::ReservedChar(c));
            }
            // Count after lower-casing: a few characters lower-case to two.
            for lower in c.to_lowercase() {
                chars += 1;
                normalised.push(lower);
            }
        }
        if chars == 0 {
            return Err(AtSignError::Empty);
        }
        if chars > MAX_ATSIGN_CHARS {
            return Err(AtSignError::TooLong);
        }
        Ok(AtSign(normalised))
    }

    /// The atSign with its `@`, e.g. `@alice`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name without the `@`, e.g. `alice` (what the atDirectory stores).
    pub fn name(&self) -> &str {
        &self.0[1..]
    }
}

impl fmt::Display for AtSign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AtSign {
    type Err = AtSignError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AtSign::parse(s)
    }
}

impl AsRef<str> for AtSign {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for AtSign {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AtSign {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        AtSign::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        for (input, want) in [
            ("alice", "@alice"),
            ("@alice", "@alice"),
            ("@Alice", "@alice"),
            ("@colin.constable", "@colinconstable"),
            ("@alice🛠", "@alice🛠"),
            ("bob_2-x", "@bob_2-x"),
        ] {
            let a = AtSign::parse(input).unwrap();
            assert_eq!(a.as_str(), want, "{input}");
            assert_eq!(a.name(), &want[1..]);
            assert_eq!(a.to_string(), want);
        }
    }

    #[test]
    fn rejects() {
        assert_eq!(AtSign::parse(""), Err(AtSignError::Empty));
        assert_eq!(AtSign::parse("@"), Err(AtSignError::Empty));
        assert_eq!(AtSign::parse("@..."), Err(AtSignError::Empty));
        assert_eq!(
            AtSign::parse("@@alice"),
            Err(AtSignError::ReservedChar('@'))
        );
        assert_eq!(AtSign::parse("al@ice"), Err(AtSignError::ReservedChar('@')));
        assert_eq!(AtSign::parse("a:b"), Err(AtSignError::ReservedChar(':')));
        assert_eq!(AtSign::parse("a b"), Err(AtSignError::WhitespaceOrControl));
        assert_eq!(
            AtSign::parse("a\u{7}"),
            Err(AtSignError::WhitespaceOrControl)
        );
        assert_eq!(
            AtSign::parse("a\u{3000}"),
            Err(AtSignError::WhitespaceOrControl)
        );
        for c in RESERVED {
            assert!(AtSign::parse(&format!("a{c}b")).is_err(), "{c}");
        }
        assert_eq!(AtSign::parse(&"a".repeat(56)), Err(AtSignError::TooLong));
        assert!(AtSign::parse(&"a".repeat(55)).is_ok());
        // 'İ' lower-cases to two characters; the limit applies to the normalised form.
        assert_eq!(AtSign::parse(&"İ".repeat(28)), Err(AtSignError::TooLong));
        let ok = AtSign::parse(&"İ".repeat(27)).unwrap();
        assert_eq!(AtSign::parse(ok.as_str()), Ok(ok.clone()));
    }

    #[test]
    fn serde_as_string() {
        let a = AtSign::parse("@bob").unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"@bob\"");
        let b: AtSign = serde_json::from_str("\"Bob\"").unwrap();
        assert_eq!(a, b);
        assert!(serde_json::from_str::<AtSign>("\"a b\"").is_err());
    }
}
