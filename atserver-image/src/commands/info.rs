//! `info[:brief]` and `noop:<ms>` (§3.8).

use std::time::Duration;

use serde_json::json;

use crate::error::{AtError, ErrorCode};
use crate::reply::{CmdResult, Reply};
use crate::session::Session;

pub async fn info(s: &mut Session, cmd: &str) -> CmdResult {
    let uptime = (s.shared.clock.now_millis() - s.shared.started_at).max(0);
    let brief = match cmd.to_ascii_lowercase().as_str() {
        "info" => false,
        "info:brief" => true,
        _ => return Err(AtError::syntax("invalid info")),
    };
    let mut v = if brief {
        json!({"version": crate::COMPAT_VERSION, "uptimeAsMillis": uptime})
    } else {
        let secs = uptime / 1000;
        json!({
            "version": crate::COMPAT_VERSION,
            "uptimeAsWords": format!("{} hours {} minutes {} seconds", secs / 3600, secs / 60 % 60, secs % 60),
            "implementation": concat!("atfleet-atserver ", env!("CARGO_PKG_VERSION")),
        })
    };
    if let Some(en) = s.enrollment() {
        v["apkam_metadata"] = json!({"enrollmentId": en.id, "namespace": en.namespaces});
    }
    Ok(Reply::Data(v.to_string()))
}

pub async fn noop(cmd: &str) -> CmdResult {
    let ms: u64 = cmd
        .get("noop:".len()..)
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| AtError::syntax("invalid noop"))?;
    if ms > 5000 {
        return Err(AtError::new(
            ErrorCode::AT0022,
            "noop delay may not exceed 5000 ms",
        ));
    }
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(Reply::data("ok"))
}
