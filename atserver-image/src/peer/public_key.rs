//! The peer's public key as this server caches it, and what a changed key means (§7.4).

use at_protocol::client::AtConnection;
use at_protocol::AtSign;

use crate::context::Shared;
use crate::error::AtError;
use crate::keystore::{self, Read};
use crate::metadata::MetaUpdate;

use super::remote::{fetch, Remote};

/// Fetches `public:publickey@peer` on `conn` (anonymous, before any pol) and keeps
/// `cached:public:publickey@peer` current with ttr -1. A changed key means the peer was reset:
/// our `shared_key.<peer>@me` is renamed to `shared_key.<peer>.until.<now>@me` so clients cut a
/// new shared key (§7.4). Returns the current key.
pub async fn refresh(
    shared: &Shared,
    conn: &mut AtConnection,
    peer: &AtSign,
) -> Result<Option<String>, AtError> {
    let command = format!("lookup:all:publickey{peer}");
    let limit = shared.peers.settings.handshake_timeout;
    let fetched = fetch(conn, &command, limit, peer).await?;
    let Remote::Found {
        value: Some(value), ..
    } = fetched
    else {
        // Never deleted on not-found (§7.4).
        return Ok(None);
    };
    remember(shared, peer, value).await
}

/// Keeps `cached:public:publickey@peer` at `value` (from a lookup or a `to:` answer); a
/// changed key retires our shared key with the peer (§7.4). Returns the current key.
pub async fn remember(
    shared: &Shared,
    peer: &AtSign,
    value: String,
) -> Result<Option<String>, AtError> {
    let cached = format!("cached:public:publickey{peer}");
    let previous = match keystore::read(shared, &cached).await? {
        Read::Active(r) => r.value,
        _ => None,
    };
    if previous.as_deref() == Some(value.as_str()) {
        return Ok(Some(value));
    }
    if previous.is_some() {
        // A new record (new createdAt), not an update of the old one.
        keystore::delete(shared, &cached).await?;
        rename_shared_key(shared, peer).await?;
    }
    let update = MetaUpdate {
        ttr: Some(-1),
        ..Default::default()
    };
    keystore::put(shared, &cached, Some(value.clone()), &update, false).await?;
    shared.peers.metrics.refresh("publickey");
    Ok(Some(value))
}

async fn rename_shared_key(shared: &Shared, peer: &AtSign) -> Result<(), AtError> {
    let me = shared.config.atsign.clone();
    let current = format!("shared_key.{}{me}", peer.name());
    let Read::Active(r) = keystore::read(shared, &current).await? else {
        return Ok(());
    };
    let now = shared.clock.now_millis();
    let renamed = format!("shared_key.{}.until.{now}{me}", peer.name());
    // The retired key keeps its encryption metadata, not the old record's timers.
    let update = MetaUpdate {
        ttl: None,
        ttb: None,
        ttr: None,
        ccd: None,
        ..r.meta.to_wire()
    };
    keystore::put(shared, &renamed, r.value, &update, false).await?;
    keystore::delete(shared, &current).await?;
    tracing::info!(%peer, "peer public key changed; shared key retired");
    Ok(())
}
