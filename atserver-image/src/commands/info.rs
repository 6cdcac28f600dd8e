//! `info[:brief]` and `noop:<ms>` (§3.8).

use std::time::Duration;

use at_protocol::command::InfoKind;
use serde_json::json;

use crate::error::AtError;
use crate::reply::{CmdResult, Reply};
use crate::session::Session;
use at_protocol::ErrorCode;

pub async fn info(s: &mut Session, kind: InfoKind) -> CmdResult {
    let uptime = (s.shared.clock.now_millis() - s.shared.started_at).max(0);
    let brief = match kind {
        InfoKind::Full => false,
        InfoKind::Brief => true,
        InfoKind::Mtls => return super::info_mtls::mtls(s, false).await,
        InfoKind::MtlsBrief => return super::info_mtls::mtls(s, true).await,
    };
    let mut v = if brief {
        json!({"version": crate::COMPAT_VERSION, "uptimeAsMillis": uptime})
    } else {
        let secs = uptime / 1000;
        json!({
            "version": crate::COMPAT_VERSION,
            "uptimeAsWords": format!("{} hours {} minutes {} seconds", secs / 3600, secs / 60 % 60, secs % 60),
            "implementation": concat!("atfleet-atserver ", env!("CARGO_PKG_VERSION")),
            "features": features(),
        })
    };
    if let Some(en) = s.enrollment() {
        v["apkam_metadata"] = json!({"enrollmentId": en.id, "namespace": en.namespaces});
    }
    Ok(Reply::Data(v.to_string()))
}

/// The `features` list of a full `info`, in the reference's shape (name, status, description,
/// syntax) and with the two verbs the reference lists there.
fn features() -> serde_json::Value {
    json!([
        {
            "name": "noop:",
            "status": "Beta",
            "description": "Waits the given number of milliseconds (at most 5000), then answers ok.",
            "syntax": r"^noop:(?<delayMillis>\d+)$",
        },
        {
            "name": "info:",
            "status": "Beta",
            "description": "Describes this server: version, uptime and the features listed here.",
            "syntax": r"^info(:brief)?$",
        },
    ])
}

pub async fn noop(ms: u64) -> CmdResult {
    if ms > 5000 {
        return Err(AtError::new(
            ErrorCode::IllegalArguments,
            "noop delay may not exceed 5000 ms",
        ));
    }
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(Reply::data("ok"))
}

/// `to:@me` (§14, 3.15): a peer's first verb; answers with this atSign's public keys.
pub async fn to(s: &mut Session, to: &at_protocol::AtSign) -> CmdResult {
    let me = s.atsign().to_string();
    if to.as_str() != me {
        return Err(AtError::new(
            at_protocol::ErrorCode::Unauthorized,
            format!("this is the atServer of {me}, not {to}"),
        ));
    }
    let mut out = serde_json::Map::new();
    for name in ["publickey", "signing_publickey"] {
        let value = match crate::keystore::read(&s.shared, &format!("public:{name}{me}")).await? {
            crate::keystore::Read::Active(r) => r
                .value
                .map_or(serde_json::Value::Null, serde_json::Value::String),
            _ => serde_json::Value::Null,
        };
        out.insert(name.to_string(), value);
    }
    Ok(Reply::Data(serde_json::Value::Object(out).to_string()))
}
