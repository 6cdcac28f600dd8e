//! `to:@peer`, the first verb a 3.15+ server sends a peer it dials: the peer answers with its
//! public keys (`{"publickey":…,"signing_publickey":…}`), which saves the separate
//! `lookup:all:publickey@peer`. A peer older than 3.15 answers AT0003 (an unknown verb); then,
//! and when the answer carries no public key, the key is fetched the legacy way. Any other
//! error (AT0009: that server does not serve the atSign we dialled) refuses the connection.

use at_protocol::client::AtConnection;
use at_protocol::{AtSign, ErrorCode, Reply as WireReply};
use serde_json::Value;

use crate::context::Shared;
use crate::error::AtError;

use super::connector::{timed, PeerError};
use super::public_key;

/// What the peer said to `to:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Introduction {
    /// A 3.15+ peer: its encryption public key, if it has one.
    Keys { publickey: Option<String> },
    /// A peer that does not know `to:`.
    Legacy,
}

/// Sorts the reply to `to:@peer`.
pub fn classify(reply: WireReply, peer: &AtSign) -> Result<Introduction, PeerError> {
    match reply {
        WireReply::Data(d) => {
            let v: Value = serde_json::from_str(&d).unwrap_or(Value::Null);
            if !v.is_object() {
                // Not the JSON a 3.15 server sends: treat it as a server that knows no `to:`.
                return Ok(Introduction::Legacy);
            }
            let publickey = v
                .get("publickey")
                .and_then(Value::as_str)
                .filter(|k| !k.is_empty())
                .map(str::to_string);
            Ok(Introduction::Keys { publickey })
        }
        WireReply::Error {
            code: Some(ErrorCode::InvalidSyntax),
            ..
        } => Ok(Introduction::Legacy),
        WireReply::Error { code, message } => Err(PeerError::Peer {
            atsign: peer.to_string(),
            source: at_protocol::client::ClientError::Server { code, message },
        }),
        other => Err(PeerError::Peer {
            atsign: peer.to_string(),
            source: at_protocol::client::ClientError::UnexpectedReply {
                step: "reading the reply to `to:`".into(),
                reply: format!("{other:?}"),
            },
        }),
    }
}

/// Introduces this server to `peer` on a fresh connection and keeps the peer's cached public
/// key current, from the `to:` answer or, for older peers, with a lookup.
pub async fn introduce(
    shared: &Shared,
    conn: &mut AtConnection,
    peer: &AtSign,
) -> Result<(), PeerError> {
    let limit = shared.peers.settings.handshake_timeout;
    let reply = timed(limit, "to:", async {
        conn.send(&format!("to:{peer}"))
            .await
            .map_err(|source| PeerError::Peer {
                atsign: peer.to_string(),
                source,
            })
    })
    .await?;
    let refreshed: Result<Option<String>, AtError> = match classify(reply, peer)? {
        Introduction::Keys {
            publickey: Some(key),
        } => public_key::remember(shared, peer, key).await,
        Introduction::Keys { publickey: None } | Introduction::Legacy => {
            public_key::refresh(shared, conn, peer).await
        }
    };
    if let Err(e) = refreshed {
        // A stale key is not a reason to refuse the connection; the next one retries.
        tracing::debug!(%peer, error = %e, "public key refresh failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_to_to_are_sorted() {
        let bob = AtSign::parse("@bob").unwrap();
        let keys = WireReply::Data(r#"{"publickey":"MIIB","signing_publickey":null}"#.into());
        assert_eq!(
            classify(keys, &bob).unwrap(),
            Introduction::Keys {
                publickey: Some("MIIB".into())
            }
        );
        let none = WireReply::Data(r#"{"publickey":null}"#.into());
        assert_eq!(
            classify(none, &bob).unwrap(),
            Introduction::Keys { publickey: None }
        );
        let old = WireReply::Error {
            code: Some(ErrorCode::InvalidSyntax),
            message: "invalid command".into(),
        };
        assert_eq!(classify(old, &bob).unwrap(), Introduction::Legacy);
        let wrong = WireReply::Error {
            code: Some(ErrorCode::Unauthorized),
            message: "this is the atServer of @eve".into(),
        };
        assert!(classify(wrong, &bob).is_err());
    }
}
