//! atSign normalisation (`fixAtSign`, atprotocol.md §4.2).

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid atSign: {0}")]
pub struct InvalidAtSign(pub String);

const FORBIDDEN: &[char] = &[
    '!', '*', '\'', '`', '(', ')', ';', ':', '&', '=', '+', '$', ',', '/', '?', '#', '[', ']', '{',
    '}',
];

/// Lower-cases, adds the leading `@`, removes dots from the name and rejects reserved characters.
pub fn normalize(raw: &str) -> Result<String, InvalidAtSign> {
    let trimmed = raw.trim();
    let name = trimmed.strip_prefix('@').unwrap_or(trimmed);
    let name: String = name
        .chars()
        .filter(|c| *c != '.')
        .collect::<String>()
        .to_lowercase();
    let bad = name.is_empty()
        || name.len() > 55 * 4
        || name
            .chars()
            .any(|c| c == '@' || FORBIDDEN.contains(&c) || c.is_whitespace() || c.is_control());
    if bad {
        return Err(InvalidAtSign(raw.to_string()));
    }
    Ok(format!("@{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(normalize("Alice").unwrap(), "@alice");
        assert_eq!(normalize("@colin.constable").unwrap(), "@colinconstable");
        assert_eq!(normalize("@alice🛠").unwrap(), "@alice🛠");
        assert!(normalize("@").is_err());
        assert!(normalize("@a b").is_err());
        assert!(normalize("@a@b").is_err());
        assert!(normalize("@a:b").is_err());
    }
}
