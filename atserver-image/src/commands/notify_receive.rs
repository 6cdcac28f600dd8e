//! The receiving side of notification delivery (§8.3): a pol-authenticated peer's `notify:`.
//! Stores the notification once (a retried delivery is acknowledged, not duplicated), keeps the
//! cached copy in step, pushes to monitors and answers `data:success`. A key owned by anyone but
//! the authenticated sender is refused: that closes the reference's cache poisoning (§13.9).

use at_protocol::command::{MessageType as WireMessageType, NotifyOp, NotifyParams};

use crate::context::Shared;
use crate::error::AtError;
use crate::keystore;
use crate::metadata::{MetaUpdate, Metadata};
use crate::notifications::{Kind, MessageType, Notification, Operation};
use crate::reply::{CmdResult, Reply};

/// The cached key a notification key maintains: `@me:k@owner` → `cached:@me:k@owner`,
/// `@me:public:k@owner` → `cached:public:k@owner`.
fn cached_key_for(key: &str, me: &str) -> Option<String> {
    let rest = key.strip_prefix(&format!("{me}:"))?;
    if rest.starts_with("public:") {
        Some(format!("cached:{rest}"))
    } else {
        Some(format!("cached:{key}"))
    }
}

pub async fn deliver(shared: &Shared, peer: &str, p: NotifyParams) -> CmdResult {
    let me = shared.config.atsign.clone();
    if p.to.as_ref().map(|t| t.as_str()) != Some(me.as_str()) {
        return Err(AtError::unauthorized(format!(
            "notifications delivered here must be addressed to {me}"
        )));
    }
    let message_type = match p.message_type {
        Some(WireMessageType::Text) => MessageType::Text,
        _ => MessageType::Key,
    };
    let key = match message_type {
        MessageType::Text => format!("{me}:{}", p.key),
        MessageType::Key => p.notification_key().to_lowercase(),
    };
    if message_type == MessageType::Key {
        let owner = p.owner.as_ref().map(|o| o.as_str());
        if owner != Some(peer) {
            tracing::warn!(%peer, %key, "refused a notification for a key the sender does not own");
            return Err(AtError::unauthorized(format!(
                "{peer} may only notify keys it owns, not {key}"
            )));
        }
    }
    let id =
        p.id.clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let lookup_id = id.clone();
    let known = shared
        .store
        .call(move |db| db.get_notification(&lookup_id))
        .await?;
    match known {
        // A retry after a lost acknowledgement: already stored, cached and pushed.
        Some(n) if n.kind == Kind::Received && n.from == peer => return Ok(Reply::data("success")),
        // Ids are the store's keys: a peer must not overwrite anyone else's record.
        Some(_) => {
            return Err(AtError::unauthorized(format!(
                "notification id {id} is already in use"
            )))
        }
        None => {}
    }
    let update = &p.metadata;
    let now = shared.clock.now_millis();
    let ttl = p
        .ttln
        .and_then(|t| i64::try_from(t).ok())
        .filter(|t| *t > 0)
        .unwrap_or(shared.config.notification_ttl_ms);
    let operation = match p.operation {
        Some(NotifyOp::Delete) => Operation::Delete,
        _ => Operation::Update,
    };
    let mut meta = Metadata::new_record(peer, now);
    meta.apply(update, now, peer, false);
    if message_type == MessageType::Key {
        maintain_cache(shared, &key, operation, p.value.clone(), update).await?;
    }
    let fresh = Notification::new(Kind::Received, peer, &me, key, now, ttl);
    let n = Notification {
        id,
        value: p.value,
        operation,
        message_type,
        notifier: p.notifier.unwrap_or(fresh.notifier.clone()),
        is_encrypted: update
            .is_encrypted
            .unwrap_or(message_type == MessageType::Key),
        metadata: Some(meta),
        ..fresh
    };
    keystore::notify::store_notification(shared, n).await?;
    Ok(Reply::data("success"))
}

/// §8.3 step 3, so that @me never reads a value older than its owner's latest once the
/// notification of it has arrived: an update with a value and a ttr (re)writes the cached copy;
/// any other update (no ttr, ttr 0, or no value: the owner's value changed and may not, or
/// cannot, be cached from this notification) removes the copy, so the next lookup asks the
/// owner. A delete removes the copy when the copy or the notification says ccd. The reference
/// leaves the copy alone on updates without ttr and refreshes only its metadata on updates
/// without a value, which leaves a recipient on an older value (issue 17).
async fn maintain_cache(
    shared: &Shared,
    key: &str,
    operation: Operation,
    value: Option<String>,
    update: &MetaUpdate,
) -> Result<(), AtError> {
    let Some(cached) = cached_key_for(key, &shared.config.atsign) else {
        return Ok(());
    };
    let existing = match keystore::read(shared, &cached).await? {
        keystore::Read::Active(r) | keystore::Read::Unborn(r) => Some(r),
        keystore::Read::Missing => None,
    };
    let cacheable = update.ttr.is_some_and(|t| t != 0);
    let cascade =
        existing.as_ref().is_some_and(|r| r.meta.ccd == Some(true)) || update.ccd == Some(true);
    match (operation, value) {
        (Operation::Update, Some(v)) if cacheable => {
            let mut update = update.clone();
            update.ttb = None;
            keystore::put(shared, &cached, Some(v), &update, false).await?;
        }
        (Operation::Delete, _) if !cascade => {}
        _ if existing.is_some() => {
            keystore::delete(shared, &cached).await?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_keys_of_notifications() {
        assert_eq!(
            cached_key_for("@bob:phone.wavi@alice", "@bob").as_deref(),
            Some("cached:@bob:phone.wavi@alice")
        );
        assert_eq!(
            cached_key_for("@bob:public:loc@alice", "@bob").as_deref(),
            Some("cached:public:loc@alice")
        );
        assert_eq!(cached_key_for("@carol:x@alice", "@bob"), None);
    }
}
