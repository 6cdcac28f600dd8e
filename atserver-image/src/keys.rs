//! Classification of stored key names (atprotocol.md §4).

/// Longest key accepted from clients (§1.5).
pub const MAX_KEY_LEN: usize = 248;

/// What kind of record a full (lower-cased) key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    Public,
    SelfKey,
    /// `@<recipient>:<entity>@<owner>`
    Shared {
        recipient: String,
    },
    /// `private:…` (server-internal)
    Private,
    /// `privatekey:<name>` and other reserved names without an atSign.
    Reserved,
    CachedPublic,
    CachedShared,
    Local,
    Invalid,
}

/// Lower-cases and strips spaces the way the reference keystore does.
pub fn normalize_key(key: &str) -> String {
    key.trim()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
}

/// The owner atSign (`@…` after the last `@`), if the key has one.
pub fn owner_of(key: &str) -> Option<&str> {
    let at = key.rfind('@')?;
    let owner = &key[at..];
    (owner.len() > 1 && !owner.contains(':')).then_some(owner)
}

/// The entity part between any prefixes and the owner.
pub fn entity_of(key: &str) -> &str {
    let without_owner = match key.rfind('@') {
        Some(at) if at > 0 => &key[..at],
        _ => key,
    };
    without_owner.rsplit(':').next().unwrap_or(without_owner)
}

/// Namespace = text after the last `.` of the entity (§4.1).
pub fn namespace_of(key: &str) -> Option<&str> {
    let entity = entity_of(key);
    entity
        .rfind('.')
        .map(|i| &entity[i + 1..])
        .filter(|ns| !ns.is_empty())
}

pub fn classify(key: &str) -> KeyKind {
    if key.starts_with("privatekey:") || key == "configkey" {
        return KeyKind::Reserved;
    }
    if key.starts_with('_') && !key.contains('@') {
        return KeyKind::Reserved;
    }
    let Some(_) = owner_of(key) else {
        return KeyKind::Invalid;
    };
    if key.starts_with("private:") {
        return KeyKind::Private;
    }
    if key.starts_with("local:") {
        return KeyKind::Local;
    }
    if let Some(rest) = key.strip_prefix("cached:") {
        return if rest.starts_with("public:") {
            KeyKind::CachedPublic
        } else if rest.starts_with('@') {
            KeyKind::CachedShared
        } else {
            KeyKind::Invalid
        };
    }
    if let Some(rest) = key.strip_prefix("public:") {
        return if rest.contains(':') {
            KeyKind::Invalid
        } else {
            KeyKind::Public
        };
    }
    if let Some(rest) = key.strip_prefix('@') {
        let Some((recipient, entity)) = rest.split_once(':') else {
            return KeyKind::Invalid;
        };
        if recipient.is_empty() || entity.contains(':') || entity.starts_with('@') {
            return KeyKind::Invalid;
        }
        return KeyKind::Shared {
            recipient: format!("@{recipient}"),
        };
    }
    if key.contains(':') {
        return KeyKind::Invalid;
    }
    KeyKind::SelfKey
}

/// Keys that never enter the commit log and answer `-1` (§4.4).
pub fn never_committed(key: &str) -> bool {
    key.starts_with("private:")
        || key.starts_with("privatekey:")
        || key.starts_with("local:")
        || (key.starts_with("public:_") && !key.starts_with("public:__"))
        || (key.starts_with('_') && !key.contains('@'))
        || key.contains(".__manage@")
        || key.contains(".__otp@")
        || key.contains(".__pkams.__public_keys@")
        || key.contains(".__public_keys.")
        || key.contains(".__private_keys.")
        || key.contains(".__self_keys.")
}

/// Keys the owner's `scan` hides unless `showhidden:true`; `hidden_always` are never listed.
pub fn scan_visibility(key: &str) -> ScanVisibility {
    if key.starts_with("private:") || key.starts_with("privatekey:") || !key.contains('@') {
        return ScanVisibility::Never;
    }
    if key.starts_with("public:_") && !key.starts_with("public:__") {
        return ScanVisibility::Never;
    }
    if key.starts_with("local:") || key.contains(".__manage@") || key.contains(".__otp@") {
        return ScanVisibility::Never;
    }
    if key.starts_with("public:__") || key.starts_with('_') || entity_of(key).starts_with('_') {
        return ScanVisibility::Hidden;
    }
    ScanVisibility::Visible
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanVisibility {
    Visible,
    Hidden,
    Never,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(classify("public:location.wavi@alice"), KeyKind::Public);
        assert_eq!(classify("phone.wavi@alice"), KeyKind::SelfKey);
        assert_eq!(
            classify("@bob:phone.wavi@alice"),
            KeyKind::Shared {
                recipient: "@bob".into()
            }
        );
        assert_eq!(classify("privatekey:at_secret"), KeyKind::Reserved);
        assert_eq!(classify("private:blocklist@alice"), KeyKind::Private);
        assert_eq!(
            classify("cached:public:publickey@bob"),
            KeyKind::CachedPublic
        );
        assert_eq!(classify("cached:@alice:phone@bob"), KeyKind::CachedShared);
        assert_eq!(classify("local:x@alice"), KeyKind::Local);
        assert_eq!(classify("nokey"), KeyKind::Invalid);
        assert_eq!(classify("a:b@alice"), KeyKind::Invalid);
    }

    #[test]
    fn commit_rules() {
        assert!(never_committed("privatekey:at_pkam_publickey"));
        assert!(never_committed("public:_x@alice"));
        assert!(!never_committed("public:__x@alice"));
        assert!(!never_committed("cached:public:publickey@bob"));
        assert!(!never_committed("phone.wavi@alice"));
    }

    #[test]
    fn namespaces() {
        assert_eq!(namespace_of("@bob:phone.wavi@alice"), Some("wavi"));
        assert_eq!(namespace_of("public:publickey@alice"), None);
        assert_eq!(entity_of("cached:@bob:a.b.ns@alice"), "a.b.ns");
    }
}
