//! The dialling side of §6.5: a pol-authenticated connection to a peer, taken from the pool or
//! made by connecting, refreshing the peer's cached public key, `from:@me`, publishing the
//! signed challenge and `pol`.

use at_protocol::client::{AtConnection, ClientError};
use at_protocol::crypto::{private_key_from_b64, sign_data};
use at_protocol::AtSign;
use base64::Engine as _;

use crate::context::Shared;
use crate::keystore::{self, Read};
use crate::metadata::MetaUpdate;

use super::connector::{timed, PeerError, Pooled};

/// Lifetime of the published pol signature (§6.5 step 5).
const PROOF_TTL_MS: i64 = 60_000;

/// A pol-authenticated connection to `peer`: an idle pooled one, or a new one once a slot
/// of the per-peer bound is free.
pub async fn checkout(shared: &Shared, peer: &AtSign) -> Result<Pooled, PeerError> {
    if let Some((conn, permit)) = shared.peers.take_idle(peer.as_str()) {
        return Ok(Pooled::new(conn, peer.to_string(), true, permit));
    }
    checkout_fresh(shared, peer).await
}

/// A newly authenticated connection to `peer`, once a slot of the per-peer bound is free.
pub async fn checkout_fresh(shared: &Shared, peer: &AtSign) -> Result<Pooled, PeerError> {
    let peers = &shared.peers;
    let limit = peers.limit_for(peer.as_str());
    let permit = timed(
        peers.settings.connect_timeout,
        format!("waiting for a free connection slot to {peer}"),
        async {
            limit
                .acquire_owned()
                .await
                .map_err(|_| PeerError::NotConfigured("connection pool closed"))
        },
    )
    .await?;
    let conn = authenticate(shared, peer).await?;
    Ok(Pooled::new(conn, peer.to_string(), false, permit))
}

/// Connect, refresh the peer's cached public key, then `from:@me` + `pol` (§6.5).
async fn authenticate(shared: &Shared, peer: &AtSign) -> Result<AtConnection, PeerError> {
    let me = AtSign::parse(&shared.config.atsign)
        .map_err(|_| PeerError::NotConfigured("invalid own atSign"))?;
    let peers = &shared.peers;
    let mut conn = peers.connect(peer).await?;
    let wrap = |source: ClientError| PeerError::Peer {
        atsign: peer.to_string(),
        source,
    };
    let limit = peers.settings.handshake_timeout;
    // `to:@peer` first (3.15), which also refreshes the peer's public key; older peers get the
    // legacy lookup.
    super::introduce::introduce(shared, &mut conn, peer).await?;
    let outcome = async {
        let challenge = timed(limit, "from:", async {
            conn.from_peer(&me).await.map_err(wrap)
        })
        .await?;
        check_binding(&challenge.challenge, peer)?;
        let signature = sign(shared, &challenge.challenge).await?;
        let update = MetaUpdate {
            ttl: Some(PROOF_TTL_MS),
            ..Default::default()
        };
        let key = challenge.signature_key();
        keystore::put(shared, &key, Some(signature), &update, true).await?;
        let result = timed(limit, "pol", async { conn.pol(&me).await.map_err(wrap) }).await;
        // The proof is single-use; the verifier has read it by now.
        let _ = keystore::delete(shared, &key).await;
        result
    }
    .await;
    peers.metrics.pol("outbound", outcome.is_ok());
    outcome.map(|()| conn)
}

/// Signs a pol challenge with the server signing key (RSA-SHA256, base64).
async fn sign(shared: &Shared, challenge: &str) -> Result<String, PeerError> {
    let signing_key = &shared.peers.signing_key;
    let key = match signing_key.get() {
        Some(k) => k.clone(),
        None => {
            let me = &shared.config.atsign;
            let name = format!("@{}:signing_privatekey{me}", me.trim_start_matches('@'));
            let text = match keystore::read(shared, &name).await? {
                Read::Active(r) => r.value.unwrap_or_default(),
                _ => return Err(PeerError::SigningKey("not found".into())),
            };
            let key =
                private_key_from_b64(&text).map_err(|e| PeerError::SigningKey(e.to_string()))?;
            let _ = signing_key.set(key.clone());
            key
        }
    };
    let data = challenge.to_string();
    tokio::task::spawn_blocking(move || sign_data(&key, data.as_bytes()))
        .await
        .map_err(|_| PeerError::SigningKey("signing task failed".into()))
}

/// A bound challenge `pol1.<base64url(JSON{"v":"@peer",…})>` must name the atSign we dialled;
/// a bare UUID (legacy) is signed as is (§6.5, §14).
pub fn check_binding(challenge: &str, dialled: &AtSign) -> Result<(), PeerError> {
    let Some(token) = challenge.strip_prefix("pol1.") else {
        return Ok(());
    };
    let wrong = |bound: String| PeerError::WrongBinding {
        atsign: dialled.to_string(),
        bound,
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| wrong("an undecodable token".into()))?;
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| wrong("an unreadable token".into()))?;
    let bound = json.get("v").and_then(|v| v.as_str()).unwrap_or_default();
    match AtSign::parse(bound) {
        Ok(a) if &a == dialled => Ok(()),
        _ => Err(wrong(bound.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_challenges_must_name_the_dialled_atsign() {
        let bob = AtSign::parse("@bob").unwrap();
        let token = |json: &str| {
            format!(
                "pol1.{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
            )
        };
        assert!(check_binding("6f1c-uuid", &bob).is_ok());
        assert!(check_binding(&token(r#"{"v":"@bob","n":"x"}"#), &bob).is_ok());
        assert!(check_binding(&token(r#"{"v":"@eve","n":"x"}"#), &bob).is_err());
        assert!(check_binding(&token("not json"), &bob).is_err());
        assert!(check_binding("pol1.!!!", &bob).is_err());
    }
}
