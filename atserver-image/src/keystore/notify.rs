//! The notifications keystore writes produce: a shared key's recipient hears of every write
//! (§8.3), and any stored notification goes to monitors or to the delivery seam.

use crate::context::Shared;
use crate::error::AtError;
use crate::metadata::Metadata;
use crate::notifications::{Event, Kind, Notification, Operation, Priority};

/// The notification a write of a shared key produces for its recipient (§8.3).
pub(super) async fn auto_notify(
    shared: &Shared,
    recipient: &str,
    key: &str,
    op: Operation,
    value: Option<String>,
    meta: Option<Metadata>,
    priority: Priority,
) -> Result<(), AtError> {
    if recipient == shared.config.atsign {
        return Ok(());
    }
    let now = shared.clock.now_millis();
    let ttl = shared.config.notification_ttl_ms;
    let me = &shared.config.atsign;
    let n = Notification {
        is_encrypted: meta.as_ref().is_some_and(|m| m.is_encrypted),
        value,
        operation: op,
        metadata: meta,
        priority,
        ..Notification::new(Kind::Sent, me, recipient, key.to_string(), now, ttl)
    };
    store_notification(shared, n).await
}

/// Persists a notification; received/self ones go live to monitors, sent ones to the delivery seam.
pub async fn store_notification(shared: &Shared, n: Notification) -> Result<(), AtError> {
    let stored = n.clone();
    shared
        .store
        .call(move |db| db.put_notification(&stored))
        .await?;
    match n.kind {
        Kind::Sent => shared.delivery.enqueue(&n.id, &n.to),
        Kind::Received | Kind::SelfKind => shared.hub.publish(Event::Notification(Box::new(n))),
    }
    Ok(())
}
