//! The expiry sweep: expired records leave with delete commit entries, expired notifications
//! and old access-log rows are purged.

use at_protocol::AtKey;

use crate::context::Shared;
use crate::notifications::{Event, Operation};
use crate::store::StoreError;

use super::commits;

/// Removes expired records with delete commit entries, and expired notifications.
pub async fn sweep(shared: &Shared) -> Result<usize, StoreError> {
    let now = shared.clock.now_millis();
    let (count, last) = shared
        .store
        .call(move |db| {
            let expired = db.expired_keys(now)?;
            let mut last = None;
            for key in &expired {
                let id = db.delete(key, commits(AtKey::parse(key).ok().as_ref()), now)?;
                if id >= 0 {
                    last = Some(id);
                }
            }
            db.purge_expired_notifications(now)?;
            db.compact_access_log(now - 7 * 24 * 3600 * 1000)?;
            Ok((expired.len(), last))
        })
        .await?;
    if last.is_some() {
        shared.hub.publish(Event::Stats {
            last_commit_id: last,
            operation: Operation::Delete,
        });
    }
    if count > 0 {
        tracing::debug!(count, "expired keys swept");
    }
    Ok(count)
}
