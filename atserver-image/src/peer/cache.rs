//! Owner reads of other atSigns' data through the cache (§3.5 lookup/plookup, §7.4): freshness by
//! ttr/refreshAt, remote fetches over pol (shared data) or anonymously (public data), the caching
//! rules, `scan:@other`, and the periodic refresh job.

use std::sync::Arc;

use at_protocol::{AtSign, ErrorCode};
use serde_json::Value;

use crate::context::Shared;
use crate::error::AtError;
use crate::keystore::{self, Read};
use crate::metadata::{MetaUpdate, Metadata};
use crate::store::Record;

use super::connector::{timed, PeerError};
use super::handshake;
use super::remote::{fetch, Remote};

/// Public data without a ttr is cached this long (§7.4).
const PUBLIC_CACHE_TTL_MS: i64 = 24 * 3600 * 1000;

/// Whether a cached record may be served without asking its owner's server.
pub fn is_fresh(meta: &Metadata, now: i64) -> bool {
    meta.ttr == Some(-1) || meta.refresh_at.is_some_and(|at| now <= at)
}

/// The cache metadata for a remote record: the origin's fields, without ttb (the copy is only
/// stored once born). `public` applies the 24 h rule for public data without a ttr.
fn cache_update(meta: &Value, public: bool) -> Result<Option<MetaUpdate>, AtError> {
    let mut update = match meta {
        Value::Object(_) => wire_meta(meta)?,
        _ => MetaUpdate::default(),
    };
    update.ttb = None;
    let cacheable = update.ttr.is_some_and(|t| t != 0);
    if cacheable {
        return Ok(Some(update));
    }
    if public {
        update.ttr = None;
        update.ttl = Some(
            update
                .ttl
                .map_or(PUBLIC_CACHE_TTL_MS, |t| t.min(PUBLIC_CACHE_TTL_MS)),
        );
        return Ok(Some(update));
    }
    Ok(None)
}

async fn store_cached(
    shared: &Shared,
    key: &str,
    value: Option<String>,
    update: &MetaUpdate,
) -> Result<(), AtError> {
    keystore::put(shared, key, value, update, false).await?;
    Ok(())
}

async fn drop_cached(shared: &Shared, key: &str) -> Result<(), AtError> {
    if matches!(
        keystore::read(shared, key).await?,
        Read::Active(_) | Read::Unborn(_)
    ) {
        keystore::delete(shared, key).await?;
    }
    Ok(())
}

/// A record as an owner lookup presents it: `key` is the cached key on a cache hit, and the
/// remote form (`@me:k@owner` / `public:k@owner`) after a fetch, so clients can tell (§3.5).
fn presented(key: &str, value: Option<String>, meta: Metadata) -> Record {
    Record {
        key: key.to_string(),
        value,
        meta,
    }
}

async fn cached_if_fresh(shared: &Shared, cached: &str) -> Result<Option<Record>, AtError> {
    let now = shared.clock.now_millis();
    if let Read::Active(r) = keystore::read(shared, cached).await? {
        if is_fresh(&r.meta, now) {
            shared.peers.metrics.cache_hits.inc();
            return Ok(Some(r));
        }
    }
    Ok(None)
}

/// Outcome of an owner lookup: `None` = the record exists but is not yet born (`data:null`).
pub type Lookup = Result<Option<Record>, AtError>;

/// `lookup:<name>@owner` by our owner: `cached:@me:<name>@owner` if fresh, else over pol.
pub async fn lookup_shared(shared: &Shared, owner: &AtSign, name: &str, bypass: bool) -> Lookup {
    let me = shared.config.atsign.clone();
    let cached = format!("cached:{me}:{name}{owner}");
    if !bypass {
        if let Some(r) = cached_if_fresh(shared, &cached).await? {
            return Ok(Some(r));
        }
    }
    let peers = &shared.peers;
    let mut pooled = handshake::checkout(shared, owner).await?;
    let command = format!("lookup:all:{name}{owner}");
    let limit = peers.settings.lookup_timeout;
    let mut fetched = fetch(&mut pooled.conn, &command, limit, owner).await;
    if pooled.reused && fetched.as_ref().is_err_and(PeerError::transport) {
        pooled = handshake::checkout_fresh(shared, owner).await?;
        fetched = fetch(&mut pooled.conn, &command, limit, owner).await;
    }
    if fetched.is_ok() {
        peers.checkin(pooled);
    }
    let remote_key = format!("{me}:{name}{owner}");
    match fetched {
        Ok(Remote::Found { value, meta }) => {
            found(shared, &cached, &remote_key, value, &meta, false).await
        }
        Ok(Remote::Unborn) => Ok(None),
        Ok(Remote::NotFound) => {
            drop_cached(shared, &cached).await?;
            Err(AtError::not_found(&remote_key))
        }
        Err(e) => {
            peers.metrics.refresh("failed");
            Err(e.into())
        }
    }
}

/// `plookup:<name>@owner`: `cached:public:<name>@owner` if fresh, else an anonymous fetch.
pub async fn lookup_public(shared: &Shared, owner: &AtSign, name: &str, bypass: bool) -> Lookup {
    let cached = format!("cached:public:{name}{owner}");
    if !bypass {
        if let Some(r) = cached_if_fresh(shared, &cached).await? {
            return Ok(Some(r));
        }
    }
    let peers = &shared.peers;
    let mut conn = peers.connect(owner).await?;
    if name == "publickey" {
        let value = super::public_key::refresh(shared, &mut conn, owner).await?;
        let _ = conn.close().await;
        return match keystore::read(shared, &cached).await? {
            Read::Active(r) => Ok(Some(presented(
                &format!("public:{name}{owner}"),
                value,
                r.meta,
            ))),
            _ => Err(AtError::not_found(&format!("public:{name}{owner}"))),
        };
    }
    let command = format!("lookup:all:{name}{owner}");
    let fetched = fetch(&mut conn, &command, peers.settings.lookup_timeout, owner).await;
    let _ = conn.close().await;
    let remote_key = format!("public:{name}{owner}");
    match fetched? {
        Remote::Found { value, meta } => {
            found(shared, &cached, &remote_key, value, &meta, true).await
        }
        Remote::Unborn => {
            drop_cached(shared, &cached).await?;
            Ok(None)
        }
        Remote::NotFound => {
            drop_cached(shared, &cached).await?;
            Err(AtError::not_found(&remote_key))
        }
    }
}

/// A record the owner's server returned: cached under `cached` when its metadata allows
/// (`public` selects the public-data rules), and presented as `remote_key`.
async fn found(
    shared: &Shared,
    cached: &str,
    remote_key: &str,
    value: Option<String>,
    meta: &Value,
    public: bool,
) -> Lookup {
    match cache_update(meta, public)? {
        Some(update) => {
            store_cached(shared, cached, value.clone(), &update).await?;
            shared.peers.metrics.refresh("stored");
        }
        // The owner's record may not be cached (any more): a copy we hold is older than it.
        None => drop_cached(shared, cached).await?,
    }
    Ok(Some(presented(
        remote_key,
        value,
        remote_meta(shared, meta)?,
    )))
}

/// A peer's metadata JSON (either shape) in the protocol's model.
fn wire_meta(meta: &Value) -> Result<MetaUpdate, AtError> {
    MetaUpdate::from_json(meta).map_err(|e| {
        AtError::new(
            ErrorCode::SecondaryConnect,
            format!("peer sent unreadable metadata: {e}"),
        )
    })
}

/// The remote record's metadata as its owner's server returned it (as the reference does:
/// the owner's dates, version and updater, not a local copy's).
fn remote_meta(shared: &Shared, meta: &Value) -> Result<Metadata, AtError> {
    let now = shared.clock.now_millis();
    match meta {
        Value::Object(_) => Ok(Metadata::from_wire(&wire_meta(meta)?, now)),
        _ => Ok(Metadata::new_record("", now)),
    }
}

/// `scan:@peer[ regex]`: the keys `peer` shared with us, listed by its server over pol.
pub async fn scan_remote(
    shared: &Shared,
    peer: &AtSign,
    regex: Option<&str>,
) -> Result<String, AtError> {
    let peers = &shared.peers;
    let mut pooled = handshake::checkout(shared, peer).await?;
    let command = match regex {
        Some(r) => format!("scan {r}"),
        None => "scan".to_string(),
    };
    let limit = peers.settings.lookup_timeout;
    let mut reply = scan_on(&mut pooled, &command, limit, peer).await;
    if pooled.reused && reply.as_ref().is_err_and(PeerError::transport) {
        pooled = handshake::checkout_fresh(shared, peer).await?;
        reply = scan_on(&mut pooled, &command, limit, peer).await;
    }
    match reply {
        Ok(data) => {
            peers.checkin(pooled);
            Ok(data)
        }
        Err(e) => Err(e.into()),
    }
}

async fn scan_on(
    pooled: &mut super::Pooled,
    command: &str,
    limit: std::time::Duration,
    peer: &AtSign,
) -> Result<String, PeerError> {
    timed(limit, format!("scanning {peer}"), async {
        pooled
            .conn
            .send_data(command)
            .await
            .map_err(|source| PeerError::Peer {
                atsign: peer.to_string(),
                source,
            })
    })
    .await
}

/// Splits `cached:<@me:|public:>name@owner` into (public?, name, owner).
fn parse_cached(key: &str, me: &str) -> Option<(bool, String, AtSign)> {
    let rest = key.strip_prefix("cached:")?;
    let (public, rest) = match rest.strip_prefix("public:") {
        Some(r) => (true, r),
        None => (false, rest.strip_prefix(&format!("{me}:"))?),
    };
    let at = rest.rfind('@')?;
    let owner = AtSign::parse(&rest[at..]).ok()?;
    Some((public, rest[..at].to_string(), owner))
}

/// One pass of the refresh job: re-fetches every cached copy past its refreshAt. Returns how
/// many were refreshed.
pub async fn refresh_stale(shared: &Shared) -> Result<usize, AtError> {
    let now = shared.clock.now_millis();
    let keys: Vec<String> = shared.store.call(move |db| db.active_keys(now)).await?;
    let me = shared.config.atsign.clone();
    let mut refreshed = 0;
    for key in keys.iter().filter(|k| k.starts_with("cached:")) {
        let Some((public, name, owner)) = parse_cached(key, &me) else {
            continue;
        };
        let Read::Active(r) = keystore::read(shared, key).await? else {
            continue;
        };
        if r.meta.ttr == Some(-1) || r.meta.refresh_at.is_none_or(|at| at > now) {
            continue;
        }
        let outcome = if public {
            lookup_public(shared, &owner, &name, true).await
        } else {
            lookup_shared(shared, &owner, &name, true).await
        };
        match outcome {
            Ok(_) => refreshed += 1,
            Err(e) if e.code == ErrorCode::KeyNotFound => refreshed += 1,
            Err(e) => tracing::debug!(%key, error = %e, "cache refresh failed"),
        }
    }
    Ok(refreshed)
}

/// The periodic refresh job (interval from [`super::PeerSettings::cache_refresh_interval`]).
pub async fn refresh_job(shared: Arc<Shared>) {
    let Some(every) = shared.peers.settings.cache_refresh_interval else {
        return;
    };
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {
                shared.peers.expire_idle();
                match refresh_stale(&shared).await {
                    Ok(n) if n > 0 => tracing::debug!(refreshed = n, "cache refresh"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cache refresh job failed"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_follows_ttr_and_refresh_at() {
        let mut m = Metadata::new_record("@alice", 0);
        assert!(!is_fresh(&m, 10));
        m.ttr = Some(-1);
        assert!(is_fresh(&m, 10));
        m.ttr = Some(5);
        m.refresh_at = Some(5000);
        assert!(is_fresh(&m, 5000));
        assert!(!is_fresh(&m, 5001));
    }

    #[test]
    fn caching_rules() {
        let shared = serde_json::json!({"ttr": 60, "ccd": true, "isEncrypted": true, "ttb": 5});
        let u = cache_update(&shared, false).unwrap().unwrap();
        assert_eq!((u.ttr, u.ccd, u.ttb), (Some(60), Some(true), None));
        assert!(
            cache_update(&serde_json::json!({"isEncrypted": true}), false)
                .unwrap()
                .is_none()
        );
        let public = cache_update(&serde_json::json!({}), true).unwrap().unwrap();
        assert_eq!(public.ttl, Some(PUBLIC_CACHE_TTL_MS));
    }

    #[test]
    fn cached_key_forms() {
        let (public, name, owner) = parse_cached("cached:@bob:phone.wavi@alice", "@bob").unwrap();
        assert!(!public);
        assert_eq!((name.as_str(), owner.as_str()), ("phone.wavi", "@alice"));
        let (public, name, _) = parse_cached("cached:public:loc@alice", "@bob").unwrap();
        assert!(public);
        assert_eq!(name, "loc");
        assert!(parse_cached("cached:@carol:x@alice", "@bob").is_none());
        assert!(parse_cached("phone@alice", "@bob").is_none());
    }
}
