//! `update`, `update:json`, `update:meta` (atprotocol.md §3.5).

use at_protocol::command::{UpdateJsonParams, UpdateMetaParams, UpdateParams};

use crate::commands::{meta_update, write};
use crate::error::AtError;
use crate::keys::{self, KeyKind, MAX_KEY_LEN};
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
        KeyKind::Reserved if key.starts_with("privatekey:") && key != write::AT_SECRET => {
            // Replacing the legacy PKAM key is an owner-wide act: APKAM devices need __manage.
            if s.enrollment()
                .is_some_and(|e| !e.namespaces.contains_key("__manage"))
            {
                return Err(AtError::unauthorized(format!(
                    "{key} needs __manage access"
                )));
            }
        }
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

pub async fn update(s: &mut Session, p: UpdateParams) -> CmdResult {
    let meta = meta_update(&p.metadata)?;
    let key = writable_key(s, &p.key.to_string())?;
    let id = write::put(&s.shared, &key, Some(p.value), &meta, p.no_commit).await?;
    Ok(Reply::Data(id.to_string()))
}

pub async fn update_json(s: &mut Session, p: UpdateJsonParams) -> CmdResult {
    let value = match p.value {
        serde_json::Value::String(v) => v,
        serde_json::Value::Null => return Err(AtError::syntax("update:json needs value")),
        other => other.to_string(),
    };
    let meta = meta_update(&p.metadata)?;
    let key = writable_key(s, &p.key.to_string())?;
    let id = write::put(&s.shared, &key, Some(value), &meta, p.no_commit).await?;
    Ok(Reply::Data(id.to_string()))
}

pub async fn update_meta(s: &mut Session, p: UpdateMetaParams) -> CmdResult {
    let meta = meta_update(&p.metadata)?;
    let key = writable_key(s, &p.key.to_string())?;
    let id = write::put(&s.shared, &key, None, &meta, p.no_commit).await?;
    Ok(Reply::Data(id.to_string()))
}
