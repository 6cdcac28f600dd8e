//! Record ids ("atKeys") in their stored forms (§4.1, §4.3, §4.4).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::atsign::{AtSign, AtSignError};

/// Longest stored key, in characters (AT0016 beyond it).
pub const MAX_KEY_CHARS: usize = 248;
/// Longest stored `cached:` key, in characters.
pub const MAX_CACHED_KEY_CHARS: usize = 255;

/// Why a string is not a valid stored key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("invalid key: empty")]
    Empty,
    #[error("invalid key: longer than {0} characters")]
    TooLong(usize),
    #[error("invalid key: empty entity name")]
    EmptyName,
    #[error("invalid key: character {0:?} not allowed in a key name")]
    InvalidChar(char),
    #[error("invalid key: missing @owner")]
    MissingOwner,
    #[error("invalid key: {0}")]
    Owner(#[from] AtSignError),
    #[error("invalid key: cached keys must be cached:public: or cached:@<atSign>:")]
    BadCachedForm,
}

/// The kind of a stored key, i.e. its prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    /// `public:<name>@<owner>`
    Public,
    /// `<name>@<owner>`
    SelfKey,
    /// `@<with>:<name>@<owner>` (with == owner is the explicit self form).
    Shared(AtSign),
    /// `private:<name>@<owner>` (server-internal).
    Private,
    /// `privatekey:<name>` (reserved, no owner).
    PrivateKey,
    /// `cached:public:<name>@<owner>`
    CachedPublic,
    /// `cached:@<with>:<name>@<owner>`
    CachedShared(AtSign),
    /// `local:<name>@<owner>` (client-only).
    Local,
    /// A bare name without an owner, e.g. `configkey` or `_latestnotificationidv2`.
    Reserved,
}

/// How an owner's `scan` treats a key ([`AtKey::scan_visibility`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScanVisibility {
    Visible,
    /// Listed only with `showHidden:true`.
    Hidden,
    Never,
}

/// A stored key: kind + entity name + owner. Always lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AtKey {
    kind: KeyKind,
    name: String,
    owner: Option<AtSign>,
}

impl AtKey {
    /// Builds a key from parts, validating the name and length.
    pub fn new(kind: KeyKind, name: &str, owner: Option<AtSign>) -> Result<AtKey, KeyError> {
        let name = name.to_lowercase();
        validate_name(&name)?;
        let needs_owner = !matches!(kind, KeyKind::PrivateKey | KeyKind::Reserved);
        let owner = match (needs_owner, owner) {
            (true, None) => return Err(KeyError::MissingOwner),
            (true, some) => some,
            // privatekey:/reserved keys never carry an owner: `@` is rejected by validate_name.
            (false, _) => None,
        };
        let key = AtKey { kind, name, owner };
        let limit = if key.is_cached() {
            MAX_CACHED_KEY_CHARS
        } else {
            MAX_KEY_CHARS
        };
        if key.to_string().chars().count() > limit {
            return Err(KeyError::TooLong(limit));
        }
        Ok(key)
    }

    /// `public:<name>@<owner>`
    pub fn public(name: &str, owner: AtSign) -> Result<AtKey, KeyError> {
        AtKey::new(KeyKind::Public, name, Some(owner))
    }

    /// `<name>@<owner>`
    pub fn self_key(name: &str, owner: AtSign) -> Result<AtKey, KeyError> {
        AtKey::new(KeyKind::SelfKey, name, Some(owner))
    }

    /// `@<with>:<name>@<owner>`
    pub fn shared(name: &str, with: AtSign, owner: AtSign) -> Result<AtKey, KeyError> {
        AtKey::new(KeyKind::Shared(with), name, Some(owner))
    }

    /// Parses a stored key (lower-casing it).
    pub fn parse(input: &str) -> Result<AtKey, KeyError> {
        let lower = input.trim().to_lowercase();
        if lower.is_empty() {
            return Err(KeyError::Empty);
        }
        let s = lower.as_str();
        if let Some(rest) = s.strip_prefix("cached:") {
            return if let Some(rest) = rest.strip_prefix("public:") {
                with_owner(KeyKind::CachedPublic, rest)
            } else if rest.starts_with('@') {
                let (with, rest) = split_shared(rest)?;
                with_owner(KeyKind::CachedShared(with), rest)
            } else {
                Err(KeyError::BadCachedForm)
            };
        }
        if let Some(rest) = s.strip_prefix("public:") {
            return with_owner(KeyKind::Public, rest);
        }
        if let Some(rest) = s.strip_prefix("private:") {
            return with_owner(KeyKind::Private, rest);
        }
        if let Some(rest) = s.strip_prefix("privatekey:") {
            return AtKey::new(KeyKind::PrivateKey, rest, None);
        }
        if let Some(rest) = s.strip_prefix("local:") {
            return with_owner(KeyKind::Local, rest);
        }
        if s.starts_with('@') {
            let (with, rest) = split_shared(s)?;
            return with_owner(KeyKind::Shared(with), rest);
        }
        if s.contains('@') {
            with_owner(KeyKind::SelfKey, s)
        } else {
            AtKey::new(KeyKind::Reserved, s, None)
        }
    }

    pub fn kind(&self) -> &KeyKind {
        &self.kind
    }

    /// The entity, `<key>[.<namespace>]`.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn owner(&self) -> Option<&AtSign> {
        self.owner.as_ref()
    }

    /// The recipient of a shared (or cached shared) key.
    pub fn shared_with(&self) -> Option<&AtSign> {
        match &self.kind {
            KeyKind::Shared(w) | KeyKind::CachedShared(w) => Some(w),
            _ => None,
        }
    }

    /// Text after the last `.` of the entity, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.name
            .rsplit_once('.')
            .map(|(_, ns)| ns)
            .filter(|ns| !ns.is_empty())
    }

    /// Hidden keys (entity starts with `_`) are left out of `scan` unless asked for.
    pub fn is_hidden(&self) -> bool {
        self.name.starts_with('_')
    }

    pub fn is_cached(&self) -> bool {
        matches!(self.kind, KeyKind::CachedPublic | KeyKind::CachedShared(_))
    }

    pub fn is_public(&self) -> bool {
        matches!(self.kind, KeyKind::Public | KeyKind::CachedPublic)
    }

    /// `x@alice` and `@alice:x@alice`.
    pub fn is_self(&self) -> bool {
        match &self.kind {
            KeyKind::SelfKey => true,
            KeyKind::Shared(w) => Some(w) == self.owner.as_ref(),
            _ => false,
        }
    }

    /// Reserved keys of §4.3: always allowed through namespace checks.
    pub fn is_reserved(&self) -> bool {
        let owned_by_with = self.shared_with().is_some() && self.shared_with() == self.owner();
        match &self.kind {
            KeyKind::PrivateKey | KeyKind::Reserved => true,
            KeyKind::Public => self.name == "publickey" || self.name == "signing_publickey",
            KeyKind::Shared(_) => {
                (owned_by_with && self.name == "signing_privatekey") || self.name == "shared_key"
            }
            KeyKind::SelfKey => self.name.starts_with("shared_key."),
            KeyKind::Private => self.name == "blocklist",
            _ => false,
        }
    }

    /// Whether a write of this key enters the commit log (§4.4): not server-internal keys
    /// (`private:`, `privatekey:`, `local:`, `public:_…` but not `public:__…`, bare `_…`
    /// names), nor the APKAM bookkeeping a server keeps per enrollment (entities ending in
    /// `.__manage`, `.__otp` or `.__pkams.__public_keys`, or holding `.__public_keys.`,
    /// `.__private_keys.` or `.__self_keys.`).
    pub fn commits(&self) -> bool {
        let internal = match &self.kind {
            KeyKind::Private | KeyKind::PrivateKey | KeyKind::Local => true,
            KeyKind::Public => self.name.starts_with('_') && !self.name.starts_with("__"),
            KeyKind::Reserved => self.name.starts_with('_'),
            _ => false,
        };
        let bookkeeping = [".__manage", ".__otp", ".__pkams.__public_keys"]
            .iter()
            .any(|suffix| self.name.ends_with(suffix))
            || [".__public_keys.", ".__private_keys.", ".__self_keys."]
                .iter()
                .any(|part| self.name.contains(part));
        !internal && !bookkeeping
    }

    /// How an owner's `scan` lists this key: never server-internal keys (`private:`,
    /// `privatekey:`, names without an owner, `public:_…` but not `public:__…`, `local:`, the
    /// `.__manage` and `.__otp` bookkeeping), hidden ones (entity starting with `_`) only with
    /// `showHidden:true`, the rest always.
    pub fn scan_visibility(&self) -> ScanVisibility {
        let never = match &self.kind {
            KeyKind::Private | KeyKind::PrivateKey | KeyKind::Reserved | KeyKind::Local => true,
            KeyKind::Public => self.name.starts_with('_') && !self.name.starts_with("__"),
            _ => false,
        } || self.name.ends_with(".__manage")
            || self.name.ends_with(".__otp");
        if never {
            ScanVisibility::Never
        } else if self.is_hidden() {
            ScanVisibility::Hidden
        } else {
            ScanVisibility::Visible
        }
    }

    /// The `cached:` copy of a public or shared key (what a recipient stores).
    pub fn to_cached(&self) -> Option<AtKey> {
        let kind = match &self.kind {
            KeyKind::Public => KeyKind::CachedPublic,
            KeyKind::Shared(w) => KeyKind::CachedShared(w.clone()),
            _ => return None,
        };
        Some(AtKey {
            kind,
            name: self.name.clone(),
            owner: self.owner.clone(),
        })
    }
}

fn split_shared(s: &str) -> Result<(AtSign, &str), KeyError> {
    let (with, rest) = s.split_once(':').ok_or(KeyError::MissingOwner)?;
    Ok((AtSign::parse(with)?, rest))
}

fn with_owner(kind: KeyKind, rest: &str) -> Result<AtKey, KeyError> {
    let (name, owner) = rest.split_once('@').ok_or(KeyError::MissingOwner)?;
    AtKey::new(kind, name, Some(AtSign::parse(owner)?))
}

fn validate_name(name: &str) -> Result<(), KeyError> {
    if name.is_empty() {
        return Err(KeyError::EmptyName);
    }
    match name
        .chars()
        .find(|c| *c == ':' || *c == '@' || c.is_whitespace() || c.is_control())
    {
        Some(c) => Err(KeyError::InvalidChar(c)),
        None => Ok(()),
    }
}

impl fmt::Display for AtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            KeyKind::Public => f.write_str("public:")?,
            KeyKind::SelfKey | KeyKind::Reserved => {}
            KeyKind::Shared(w) => write!(f, "{w}:")?,
            KeyKind::Private => f.write_str("private:")?,
            KeyKind::PrivateKey => f.write_str("privatekey:")?,
            KeyKind::CachedPublic => f.write_str("cached:public:")?,
            KeyKind::CachedShared(w) => write!(f, "cached:{w}:")?,
            KeyKind::Local => f.write_str("local:")?,
        }
        f.write_str(&self.name)?;
        if let Some(o) = &self.owner {
            write!(f, "{o}")?;
        }
        Ok(())
    }
}

impl FromStr for AtKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AtKey::parse(s)
    }
}

impl Serialize for AtKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AtKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        AtKey::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> AtSign {
        AtSign::parse(s).unwrap()
    }

    #[test]
    fn parses_every_stored_form() {
        let cases: Vec<(&str, KeyKind, &str, Option<&str>)> = vec![
            (
                "public:location.wavi@alice",
                KeyKind::Public,
                "location.wavi",
                Some("@alice"),
            ),
            (
                "phone.wavi@alice",
                KeyKind::SelfKey,
                "phone.wavi",
                Some("@alice"),
            ),
            (
                "@bob:phone.wavi@alice",
                KeyKind::Shared(at("@bob")),
                "phone.wavi",
                Some("@alice"),
            ),
            (
                "private:blocklist@alice",
                KeyKind::Private,
                "blocklist",
                Some("@alice"),
            ),
            (
                "privatekey:at_secret",
                KeyKind::PrivateKey,
                "at_secret",
                None,
            ),
            (
                "cached:@bob:phone.wavi@alice",
                KeyKind::CachedShared(at("@bob")),
                "phone.wavi",
                Some("@alice"),
            ),
            (
                "cached:public:publickey@bob",
                KeyKind::CachedPublic,
                "publickey",
                Some("@bob"),
            ),
            (
                "local:draft.app@alice",
                KeyKind::Local,
                "draft.app",
                Some("@alice"),
            ),
            ("configkey", KeyKind::Reserved, "configkey", None),
            (
                "public:__pkam@alice",
                KeyKind::Public,
                "__pkam",
                Some("@alice"),
            ),
            (
                "@alice:phone@alice",
                KeyKind::Shared(at("@alice")),
                "phone",
                Some("@alice"),
            ),
        ];
        for (text, kind, name, owner) in cases {
            let k = AtKey::parse(text).unwrap();
            assert_eq!(k.kind(), &kind, "{text}");
            assert_eq!(k.name(), name);
            assert_eq!(k.owner().map(AtSign::as_str), owner);
            assert_eq!(k.to_string(), text);
        }
    }

    #[test]
    fn lower_cases() {
        let k = AtKey::parse("@Bob:Phone.WAVI@Alice").unwrap();
        assert_eq!(k.to_string(), "@bob:phone.wavi@alice");
        assert_eq!(k.namespace(), Some("wavi"));
        assert_eq!(k.shared_with(), Some(&at("@bob")));
    }

    #[test]
    fn flags() {
        let k = |s| AtKey::parse(s).unwrap();
        assert!(k("public:_x@a").is_hidden());
        assert!(k("_x@a").is_hidden());
        assert!(k("@b:_x@a").is_hidden());
        assert!(!k("x@a").is_hidden());
        assert!(!k("private:x@a").commits());
        assert!(!k("privatekey:at_secret").commits());
        assert!(!k("local:x@a").commits());
        assert!(!k("public:_x@a").commits());
        assert!(k("public:__x@a").commits());
        assert!(k("cached:public:x@a").commits());
        assert!(k("x@a").commits());
        assert!(!k("_latestnotificationidv2").commits());
        assert!(k("configkey").commits());
        assert!(!k("id1.new.enrollments.__manage@a").commits());
        assert!(!k("private:abc.__otp@a").commits());
        assert!(!k("public:app.dev.pkam.__pkams.__public_keys@a").commits());
        assert!(!k("x.__public_keys.ns@a").commits());
        assert!(!k("x.__self_keys.ns@a").commits());
        assert!(!k("x.__private_keys.ns@a").commits());
        assert!(k("phone.wavi@a").commits());
        for (key, visibility) in [
            ("phone.wavi@a", ScanVisibility::Visible),
            ("@b:x.ns@a", ScanVisibility::Visible),
            ("cached:public:publickey@b", ScanVisibility::Visible),
            ("public:__x@a", ScanVisibility::Hidden),
            ("_x@a", ScanVisibility::Hidden),
            ("@b:_x@a", ScanVisibility::Hidden),
            ("cached:public:_x@b", ScanVisibility::Hidden),
            ("public:_x@a", ScanVisibility::Never),
            ("private:blocklist@a", ScanVisibility::Never),
            ("privatekey:at_secret", ScanVisibility::Never),
            ("configkey", ScanVisibility::Never),
            ("local:x@a", ScanVisibility::Never),
            ("id1.new.enrollments.__manage@a", ScanVisibility::Never),
            ("abc.__otp@a", ScanVisibility::Never),
        ] {
            assert_eq!(k(key).scan_visibility(), visibility, "{key}");
        }
        assert!(k("@a:x@a").is_self());
        assert!(!k("@b:x@a").is_self());
        assert!(k("public:publickey@a").is_reserved());
        assert!(k("shared_key.bob@a").is_reserved());
        assert!(k("@bob:shared_key@a").is_reserved());
        assert!(k("@a:signing_privatekey@a").is_reserved());
        assert!(!k("phone.wavi@a").is_reserved());
        assert_eq!(k("phone@a").namespace(), None);
        assert_eq!(k("a.b.ns@a").namespace(), Some("ns"));
        assert_eq!(
            k("@b:x.ns@a").to_cached().unwrap().to_string(),
            "cached:@b:x.ns@a"
        );
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "   ",
            "public:@alice",
            "public:x",
            "@bob:x",
            "x y@alice",
            "a:b@alice",
            "cached:x@alice",
            "@bo b:x@alice",
            "x@al!ce",
            "privatekey:",
            "privatekey:x@alice",
        ] {
            assert!(AtKey::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@alice", "k".repeat(242));
        assert_eq!(long.len(), 248);
        assert!(AtKey::parse(&long).is_ok());
        assert_eq!(
            AtKey::parse(&format!("k{long}")),
            Err(KeyError::TooLong(248))
        );
        let cached = format!("cached:public:{}@alice", "k".repeat(235));
        assert_eq!(cached.len(), 255);
        assert!(AtKey::parse(&cached).is_ok());
        assert_eq!(
            AtKey::parse(&format!("cached:public:{}@alice", "k".repeat(236))),
            Err(KeyError::TooLong(255))
        );
    }
}
