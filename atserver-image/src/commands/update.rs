//! `update`, `update:json`, `update:meta` (atprotocol.md §3.5).

use crate::commands::strip_verb;
use crate::commands::write;
use crate::error::AtError;
use crate::keys::{self, KeyKind, MAX_KEY_LEN};
use crate::metadata::{self, MetaUpdate, Metadata};
use crate::reply::{CmdResult, Reply};
use crate::session::{Access, Session};

/// Builds and validates the full key from `[public:|@for:]name[@owner]` for a write.
pub fn writable_key(s: &Session, part: &str) -> Result<String, AtError> {
    let key = keys::normalize_key(part);
    if key.is_empty() {
        return Err(AtError::syntax("missing key"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(AtError::invalid_key(format!(
            "key length exceeds {MAX_KEY_LEN}"
        )));
    }
    let kind = keys::classify(&key);
    match kind {
        KeyKind::Public | KeyKind::SelfKey | KeyKind::Shared { .. } => {
            let owner = keys::owner_of(&key).unwrap_or_default();
            if owner != s.atsign() {
                return Err(AtError::invalid_key(format!(
                    "Cannot update keys of another atSign: {owner}"
                )));
            }
            let name = keys::entity_of(&key);
            if name.is_empty() || name.contains('@') {
                return Err(AtError::syntax("invalid key name"));
            }
        }
        KeyKind::Reserved if key.starts_with("privatekey:") && key != write::AT_SECRET => {}
        KeyKind::Reserved => return Err(AtError::invalid_key(format!("You may not update {key}"))),
        KeyKind::Private => {
            return Err(AtError::invalid_key(
                "You may not update keys of type private",
            ))
        }
        KeyKind::CachedPublic | KeyKind::CachedShared => {
            return Err(AtError::invalid_key(
                "You may not update keys of type cached",
            ))
        }
        KeyKind::Local => {
            return Err(AtError::invalid_key(
                "You may not update keys of type local",
            ))
        }
        KeyKind::Invalid => return Err(AtError::invalid_key(format!("invalid key {key}"))),
    }
    s.authorize(&key, Access::Write)?;
    Ok(key)
}

pub async fn update(s: &mut Session, cmd: &str) -> CmdResult {
    if let Some(json) = strip_verb(cmd, "update:json:") {
        return update_json(s, json).await;
    }
    let rest = strip_verb(cmd, "update:").ok_or_else(|| AtError::syntax("invalid update"))?;
    let (head, value) = rest
        .split_once(' ')
        .ok_or_else(|| AtError::syntax("update needs a key and a value"))?;
    if value.is_empty() {
        return Err(AtError::syntax("update needs a value"));
    }
    let (head, skip_commit) = match strip_verb(head, "nc:") {
        Some(h) => (h, true),
        None => (head, false),
    };
    let tokens: Vec<&str> = head.split(':').collect();
    let mut meta = MetaUpdate::default();
    let used = metadata::parse_leading(&tokens, &mut meta)?;
    let key_part = tokens[used..].join(":");
    let key = writable_key(s, &key_part)?;
    let id = write::put(&s.shared, &key, Some(value.to_string()), &meta, skip_commit).await?;
    Ok(Reply::Data(id.to_string()))
}

async fn update_json(s: &mut Session, json: &str) -> CmdResult {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|_| AtError::syntax("invalid update:json body"))?;
    let key = v
        .get("atKey")
        .and_then(|k| k.as_str())
        .ok_or_else(|| AtError::syntax("update:json needs atKey"))?;
    let value = match v.get("value") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => {
            return Err(AtError::syntax("update:json needs value"))
        }
        Some(other) => other.to_string(),
    };
    let meta = match v.get("metadata") {
        Some(serde_json::Value::Object(m)) => Metadata::update_from_json(m)?,
        _ => MetaUpdate::default(),
    };
    let key = writable_key(s, key)?;
    let id = write::put(&s.shared, &key, Some(value), &meta, false).await?;
    Ok(Reply::Data(id.to_string()))
}

pub async fn update_meta(s: &mut Session, cmd: &str) -> CmdResult {
    let rest =
        strip_verb(cmd, "update:meta:").ok_or_else(|| AtError::syntax("invalid update:meta"))?;
    let (rest, skip_commit) = match strip_verb(rest, "nc:") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    // The key runs to `@owner`; the owner ends at the next `:`; metadata follows.
    let (scope, body) = if let Some(b) = strip_verb(rest, "public:") {
        ("public:", b)
    } else if rest.starts_with('@') {
        let (f, b) = rest
            .split_once(':')
            .ok_or_else(|| AtError::syntax("invalid update:meta"))?;
        (f, b)
    } else {
        ("", rest)
    };
    let at = body
        .find('@')
        .ok_or_else(|| AtError::syntax("update:meta needs key@owner"))?;
    let after = &body[at..];
    let (owner, meta_part) = match after.find(':') {
        Some(i) => (&after[..i], &after[i + 1..]),
        None => (after, ""),
    };
    let name = &body[..at];
    if name.chars().count() < 2 || name.contains(':') {
        return Err(AtError::syntax("invalid key in update:meta"));
    }
    let sep = if scope.starts_with('@') { ":" } else { "" };
    let key = writable_key(s, &format!("{scope}{sep}{name}{owner}"))?;
    let mut meta = MetaUpdate::default();
    if !meta_part.is_empty() {
        let tokens: Vec<&str> = meta_part.split(':').collect();
        let used = metadata::parse_leading(&tokens, &mut meta)?;
        if used != tokens.len() {
            return Err(AtError::syntax("invalid metadata in update:meta"));
        }
    }
    let id = write::put(&s.shared, &key, None, &meta, skip_commit).await?;
    Ok(Reply::Data(id.to_string()))
}
