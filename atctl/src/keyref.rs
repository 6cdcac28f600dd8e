//! Turning what the user typed (`phone`, `phone@alice`, `public:loc@alice`, `@bob:phone@alice`,
//! plus `-n wavi`) into an [`AtKey`].

use at_protocol::key::KeyKind;
use at_protocol::{AtKey, AtSign};

use crate::error::{CtlError, Result};

/// The scope and owner parts of a typed key, before the owner is known for sure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    pub scope: Scope,
    pub name: String,
    pub owner: Option<AtSign>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Public,
    SelfOrReceived,
    SharedWith(AtSign),
}

impl KeyRef {
    pub fn parse(text: &str, namespace: Option<&str>) -> Result<Self> {
        let bad = |why: &str| CtlError::usage(format!("invalid key {text:?}: {why}"));
        let text = text.trim();
        let (scope, rest) = if let Some(rest) = text.strip_prefix("public:") {
            (Scope::Public, rest)
        } else if text.starts_with('@') {
            let (with, rest) = text
                .split_once(':')
                .ok_or_else(|| bad("a shared key is @recipient:name@owner"))?;
            let with = AtSign::parse(with).map_err(|e| bad(&e.to_string()))?;
            (Scope::SharedWith(with), rest)
        } else {
            (Scope::SelfOrReceived, text)
        };
        let (name, owner) = match rest.split_once('@') {
            Some((name, owner)) => (
                name,
                Some(AtSign::parse(owner).map_err(|e| bad(&e.to_string()))?),
            ),
            None => (rest, None),
        };
        if name.is_empty() || name.contains([':', '@']) || name.contains(char::is_whitespace) {
            return Err(bad("names may not be empty or contain ':', '@' or spaces"));
        }
        let mut name = name.to_lowercase();
        if let Some(ns) = namespace.map(str::trim).filter(|ns| !ns.is_empty()) {
            let ns = ns.trim_start_matches('.').to_lowercase();
            if !name.ends_with(&format!(".{ns}")) {
                name = format!("{name}.{ns}");
            }
        }
        Ok(Self { scope, name, owner })
    }

    /// The full key, with `default_owner` where none was typed.
    pub fn resolve(&self, default_owner: &AtSign) -> Result<AtKey> {
        let owner = self.owner.clone().unwrap_or_else(|| default_owner.clone());
        let kind = match &self.scope {
            Scope::Public => KeyKind::Public,
            Scope::SelfOrReceived => KeyKind::SelfKey,
            Scope::SharedWith(w) => KeyKind::Shared(w.clone()),
        };
        AtKey::new(kind, &self.name, Some(owner))
            .map_err(|e| CtlError::usage(format!("invalid key: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> AtSign {
        AtSign::parse(s).unwrap()
    }

    #[test]
    fn typed_keys() {
        let me = at("@alice");
        let k = KeyRef::parse("phone", Some("wavi")).unwrap();
        assert_eq!(k.resolve(&me).unwrap().to_string(), "phone.wavi@alice");
        let k = KeyRef::parse("public:Loc.wavi@alice", Some("wavi")).unwrap();
        assert_eq!(k.resolve(&me).unwrap().to_string(), "public:loc.wavi@alice");
        let k = KeyRef::parse("@bob:phone@alice", None).unwrap();
        assert_eq!(k.resolve(&me).unwrap().to_string(), "@bob:phone@alice");
        let k = KeyRef::parse("phone.wavi@bob", None).unwrap();
        assert_eq!(k.owner, Some(at("@bob")));
        for bad in ["", "@bob", "a b", "public:", "@bob:@alice", "x:y"] {
            assert!(KeyRef::parse(bad, None).is_err(), "{bad}");
        }
    }
}
