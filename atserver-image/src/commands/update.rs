//! `update`, `update:json`, `update:meta` (atprotocol.md §3.5).

use at_protocol::command::{UpdateJsonParams, UpdateMetaParams, UpdateParams};
use at_protocol::{AtKey, AtSign, KeyKind};

use crate::error::AtError;
use crate::keystore;
use crate::reply::{CmdResult, Reply};
use crate::session::{Access, Session};

/// The stored form of a key a client may write, checked against the kind of key it is.
pub fn writable_key(s: &Session, key: &AtKey) -> Result<String, AtError> {
    let text = key.to_string();
    match key.kind() {
        KeyKind::Public | KeyKind::SelfKey | KeyKind::Shared(_) => {
            let owner = key.owner().map(AtSign::as_str).unwrap_or_default();
            if owner != s.atsign() {
                return Err(AtError::invalid_key(format!(
                    "Cannot update keys of another atSign: {owner}"
                )));
            }
        }
        KeyKind::PrivateKey if text != keystore::AT_SECRET => {
            // Replacing the legacy PKAM key is an owner-wide act: APKAM devices need __manage.
            if s.enrollment()
                .is_some_and(|e| !e.namespaces.contains_key("__manage"))
            {
                return Err(AtError::unauthorized(format!(
                    "{text} needs __manage access"
                )));
            }
        }
        KeyKind::PrivateKey | KeyKind::Reserved => {
            return Err(AtError::invalid_key(format!("You may not update {text}")))
        }
        KeyKind::Private => {
            return Err(AtError::invalid_key(
                "You may not update keys of type private",
            ))
        }
        KeyKind::CachedPublic | KeyKind::CachedShared(_) => {
            return Err(AtError::invalid_key(
                "You may not update keys of type cached",
            ))
        }
        KeyKind::Local => {
            return Err(AtError::invalid_key(
                "You may not update keys of type local",
            ))
        }
    }
    s.authorize(&text, Access::Write)?;
    Ok(text)
}

pub async fn update(s: &mut Session, p: UpdateParams) -> CmdResult {
    let meta = &p.metadata;
    let key = writable_key(s, &p.key)?;
    let id = keystore::put(&s.shared, &key, Some(p.value), meta, p.no_commit).await?;
    Ok(Reply::Data(id.to_string()))
}

pub async fn update_json(s: &mut Session, p: UpdateJsonParams) -> CmdResult {
    let value = match p.value {
        serde_json::Value::String(v) => v,
        serde_json::Value::Null => return Err(AtError::syntax("update:json needs value")),
        other => other.to_string(),
    };
    let meta = &p.metadata;
    let key = writable_key(s, &p.key)?;
    let id = keystore::put(&s.shared, &key, Some(value), meta, p.no_commit).await?;
    Ok(Reply::Data(id.to_string()))
}

pub async fn update_meta(s: &mut Session, p: UpdateMetaParams) -> CmdResult {
    let meta = &p.metadata;
    let key = writable_key(s, &p.key)?;
    let id = keystore::put(&s.shared, &key, None, meta, p.no_commit).await?;
    Ok(Reply::Data(id.to_string()))
}
