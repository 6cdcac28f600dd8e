//! Keystore operations shared by the verbs: reads that honour ttb/ttl, writes that commit and
//! notify, the expiry sweep, and start-up seeding (CRAM secret, signing key pair).

use at_protocol::crypto::CryptoError;
use at_protocol::{AtKey, KeyKind};

use crate::error::AtError;
use crate::metadata::{MetaUpdate, Metadata};
use crate::notifications::{Event, Kind, MessageType, Notification, Operation, Priority, Status};
use crate::server::Shared;
use crate::store::{Record, StoreError};

pub const AT_SECRET: &str = "privatekey:at_secret";
pub const AT_SECRET_DELETED: &str = "privatekey:at_secret_deleted";
pub const PKAM_PUBLIC_KEY: &str = "privatekey:at_pkam_publickey";
const SIGNING_GENERATED: &str = "privatekey:signing_keypair_generated";

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
fn commits(key: Option<&AtKey>) -> bool {
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
    let op = op_symbol(value_given, !update.is_empty());
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
        )
        .await?;
    }
    Ok(id)
}

/// Deletes `key`; a delete entry is committed even when the key was absent.
pub async fn delete(shared: &Shared, key: &str) -> Result<i64, AtError> {
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
        auto_notify(shared, recipient, key, Operation::Delete, None, None).await?;
    }
    Ok(id)
}

/// The notification a write of a shared key produces for its recipient (§8.3).
async fn auto_notify(
    shared: &Shared,
    recipient: &str,
    key: &str,
    op: Operation,
    value: Option<String>,
    meta: Option<Metadata>,
) -> Result<(), AtError> {
    if recipient == shared.config.atsign {
        return Ok(());
    }
    let now = shared.clock.now_millis();
    let ttl = shared.config.notification_ttl_ms;
    let n = Notification {
        id: uuid::Uuid::new_v4().to_string(),
        from: shared.config.atsign.clone(),
        to: recipient.to_string(),
        key: key.to_string(),
        is_encrypted: meta.as_ref().is_some_and(|m| m.is_encrypted),
        value,
        operation: op,
        message_type: MessageType::Key,
        kind: Kind::Sent,
        status: Status::Queued,
        priority: Priority::Low,
        strategy: "all".into(),
        latest_n: 1,
        notifier: "SYSTEM".into(),
        retry_count: 0,
        created_at: now,
        ttl,
        expires_at: now + ttl,
        metadata: meta,
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

/// A signing key pair being generated in the background, as (public, private) base64.
pub type PendingKeyPair = tokio::task::JoinHandle<Result<(String, String), CryptoError>>;

/// Start-up: seed the CRAM secret unless onboarding disabled CRAM, and create the server's
/// signing key pair on first start (§4.3, §12.1), taking it from `pending` when the caller started
/// generating it early.
pub async fn initialise(shared: &Shared, pending: Option<PendingKeyPair>) -> Result<(), AtError> {
    let me = shared.config.atsign.clone();
    if let Some(secret) = shared.config.cram_secret.clone() {
        let deleted = matches!(read(shared, AT_SECRET_DELETED).await?, Read::Active(_));
        if !deleted {
            put(
                shared,
                AT_SECRET,
                Some(secret),
                &MetaUpdate::default(),
                true,
            )
            .await?;
        }
    }
    if matches!(read(shared, SIGNING_GENERATED).await?, Read::Missing) {
        let pending = pending
            .unwrap_or_else(|| tokio::task::spawn_blocking(crate::crypto::generate_rsa_keypair));
        let (public, private) = pending
            .await
            .map_err(|_| AtError::internal("key generation task failed"))?
            .map_err(|e| AtError::internal(e.to_string()))?;
        let none = MetaUpdate::default();
        put(
            shared,
            &format!("public:signing_publickey{me}"),
            Some(public),
            &none,
            false,
        )
        .await?;
        let private_key = format!("@{}:signing_privatekey{me}", me.trim_start_matches('@'));
        put(shared, &private_key, Some(private), &none, false).await?;
        put(shared, SIGNING_GENERATED, Some("true".into()), &none, true).await?;
        tracing::info!("server signing key pair generated");
    }
    Ok(())
}
