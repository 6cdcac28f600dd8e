//! A remote `lookup:all:` on a peer connection, sorted into found / unborn / not found.

use at_protocol::client::AtConnection;
use at_protocol::{AtSign, ErrorCode, Reply as WireReply};
use serde_json::Value;

use crate::error::AtError;

use super::connector::{timed, PeerError};

/// What a remote `lookup:all:` returned.
pub enum Remote {
    Found { value: Option<String>, meta: Value },
    Unborn,
    NotFound,
}

pub fn parse_all(data: &str) -> Result<Remote, AtError> {
    if data.trim() == "null" {
        return Ok(Remote::Unborn);
    }
    let v: Value = serde_json::from_str(data).map_err(|_| {
        AtError::new(
            ErrorCode::SecondaryConnect,
            "peer sent unreadable lookup JSON",
        )
    })?;
    let value = match v.get("data") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    Ok(Remote::Found {
        value,
        meta: v.get("metaData").cloned().unwrap_or(Value::Null),
    })
}

/// Sends `command` and sorts the reply into found / unborn / not found.
pub async fn fetch(
    conn: &mut AtConnection,
    command: &str,
    limit: std::time::Duration,
    peer: &AtSign,
) -> Result<Remote, PeerError> {
    let reply = timed(limit, format!("looking up data of {peer}"), async {
        conn.send(command).await.map_err(|source| PeerError::Peer {
            atsign: peer.to_string(),
            source,
        })
    })
    .await?;
    match reply {
        WireReply::Data(d) => Ok(parse_all(&d)?),
        WireReply::Error {
            code: Some(ErrorCode::KeyNotFound),
            ..
        } => Ok(Remote::NotFound),
        WireReply::Error { code, message } => Err(PeerError::Peer {
            atsign: peer.to_string(),
            source: at_protocol::client::ClientError::Server { code, message },
        }),
        other => Err(PeerError::Local(AtError::new(
            ErrorCode::SecondaryConnect,
            format!("unexpected reply from {peer}: {other:?}"),
        ))),
    }
}
