//! The keystore service the verbs, the peer side and the background jobs share: reads that honour
//! ttb/ttl and writes that commit and notify. The notifications writes produce are in
//! [`notify`], the expiry sweep in [`sweep`], start-up seeding (CRAM secret, signing key pair)
//! in [`seed`].

pub mod notify;
pub mod seed;
pub mod sweep;

use at_protocol::{AtKey, KeyKind};

use crate::error::AtError;
use crate::metadata::{MetaUpdate, Metadata};
use crate::notifications::{Event, Operation, Priority};

use self::notify::auto_notify;
use crate::context::Shared;
use crate::store::Record;

pub const AT_SECRET: &str = "privatekey:at_secret";
pub const AT_SECRET_DELETED: &str = "privatekey:at_secret_deleted";
pub const PKAM_PUBLIC_KEY: &str = "privatekey:at_pkam_publickey";

/// A read at a point in time.
pub enum Read {
    Missing,
    Unborn(Record),
    Active(Record),
}

/// Reads `key`, treating expired records as gone (the sweep writes their delete entries).
pub async fn read(shared: &Shared, key: &str) -> Result<Read, AtError> {
    let rec = shared.store.get(key).await?;
    let now = shared.clock.now_millis();
    Ok(match rec {
        None => Read::Missing,
        Some(r) if r.meta.expired(now) => Read::Missing,
        Some(r) if r.meta.unborn(now) => Read::Unborn(std::sync::Arc::unwrap_or_clone(r)),
        Some(r) => Read::Active(std::sync::Arc::unwrap_or_clone(r)),
    })
}

/// Commit op symbol for a write (§9.1).
fn op_symbol(value_given: bool, meta_given: bool) -> &'static str {
    match (value_given, meta_given) {
        (true, true) => "*",
        (true, false) => "+",
        _ => "#",
    }
}

/// Whether a write of the stored key enters the commit log; a key that does not parse does.
pub(crate) fn commits(key: Option<&AtKey>) -> bool {
    key.is_none_or(AtKey::commits)
}

/// The recipient of a shared key, whose writes notify it.
fn recipient_of(key: Option<&AtKey>) -> Option<&str> {
    match key?.kind() {
        KeyKind::Shared(with) => Some(with.as_str()),
        _ => None,
    }
}

/// Writes a record (value and/or metadata) and returns its commit id (-1 when never committed).
pub async fn put(
    shared: &Shared,
    key: &str,
    value: Option<String>,
    update: &MetaUpdate,
    skip_commit: bool,
) -> Result<i64, AtError> {
    let now = shared.clock.now_millis();
    let atsign = shared.config.atsign.clone();
    let k = key.to_string();
    let value_given = value.is_some();
    let op = op_symbol(value_given, !update.fragment_is_empty());
    let parsed = AtKey::parse(key).ok();
    let commit = !skip_commit && commits(parsed.as_ref());
    let upd = update.clone();
    let written = shared
        .store
        .call(move |db| {
            let existing = db.get(&k)?.filter(|r| !r.meta.expired(now));
            if existing.as_ref().is_some_and(|r| r.meta.immutable) {
                return Ok(None);
            }
            let existed = existing.is_some();
            let (mut meta, old_value) = match existing {
                Some(r) => (r.meta, r.value),
                None => (Metadata::new_record(&atsign, now), None),
            };
            meta.apply(&upd, now, &atsign, existed);
            let record = Record {
                key: k,
                value: if value_given { value } else { old_value },
                meta,
            };
            let id = db.put(&record, op, commit, now)?;
            Ok(Some((id, record)))
        })
        .await?;
    let Some((id, record)) = written else {
        return Err(AtError::unauthorized(format!("{key} is immutable")));
    };
    if commit {
        shared.hub.publish(Event::Stats {
            last_commit_id: Some(id),
            operation: Operation::Update,
        });
    }
    if let Some(recipient) = recipient_of(parsed.as_ref()) {
        auto_notify(
            shared,
            recipient,
            key,
            Operation::Update,
            record.value.clone(),
            Some(record.meta),
            Priority::Low,
        )
        .await?;
    }
    Ok(id)
}

/// Deletes `key`; a delete entry is committed even when the key was absent.
pub async fn delete(shared: &Shared, key: &str) -> Result<i64, AtError> {
    delete_notifying(shared, key, Priority::Low).await
}

/// [`delete`], with the priority of the notification a shared key's recipient gets
/// (`delete:priority:…`, as the reference's auto-notify of deletes uses it).
pub async fn delete_notifying(
    shared: &Shared,
    key: &str,
    priority: Priority,
) -> Result<i64, AtError> {
    let now = shared.clock.now_millis();
    let parsed = AtKey::parse(key).ok();
    let commit = commits(parsed.as_ref());
    let k = key.to_string();
    let id = shared
        .store
        .call(move |db| db.delete(&k, commit, now))
        .await?;
    if commit {
        shared.hub.publish(Event::Stats {
            last_commit_id: Some(id),
            operation: Operation::Delete,
        });
    }
    if let Some(recipient) = recipient_of(parsed.as_ref()) {
        auto_notify(
            shared,
            recipient,
            key,
            Operation::Delete,
            None,
            None,
            priority,
        )
        .await?;
    }
    Ok(id)
}
