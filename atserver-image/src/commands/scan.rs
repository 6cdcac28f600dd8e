//! `scan` with the per-connection views of atprotocol.md §3.5.

use at_protocol::command::ScanParams;
use at_protocol::{AtKey, ScanVisibility};

use crate::error::AtError;
use crate::reply::{CmdResult, Reply};
use crate::session::{Auth, Session};

pub async fn scan(s: &mut Session, p: ScanParams) -> CmdResult {
    if p.commit_log {
        return super::scan_cl::scan_commit_log(s, p).await;
    }
    if let Some(other) = p.for_atsign.as_ref().filter(|a| a.as_str() != s.atsign()) {
        // scan:@bob (owner only): the keys @bob shared with us, listed by @bob's server.
        if !s.is_owner() {
            return Err(AtError::unauthenticated(
                "scan of another atSign needs an owner connection",
            ));
        }
        let data = crate::peer::cache::scan_remote(&s.shared, other, p.regex.as_deref()).await?;
        return Ok(Reply::Data(data));
    }
    let regex = super::pattern::compile_optional(p.regex.as_deref())?;
    let show_hidden = p.show_hidden.unwrap_or(false);
    let now = s.shared.clock.now_millis();
    let keys: Vec<String> = s.shared.store.call(move |db| db.active_keys(now)).await?;
    let matches = |k: &str| regex.as_ref().is_none_or(|r| r.is_match(k));
    let listed: Vec<String> = match &s.auth {
        Auth::Anonymous => keys
            .iter()
            .filter(|k| k.starts_with("public:") && !k.starts_with("public:_"))
            .map(|k| k["public:".len()..].to_string())
            .filter(|k| matches(k))
            .collect(),
        Auth::Peer(peer) => {
            let prefix = format!("{peer}:");
            keys.iter()
                .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
                .filter(|k| matches(k))
                .collect()
        }
        Auth::Owner { .. } => keys
            .into_iter()
            .filter(|k| {
                let Ok(key) = AtKey::parse(k) else {
                    return false;
                };
                let visible = match key.scan_visibility() {
                    ScanVisibility::Visible => true,
                    ScanVisibility::Hidden => show_hidden,
                    ScanVisibility::Never => false,
                };
                visible
                    && (s.enrollment().is_none()
                        || (key.namespace().is_some() || k.starts_with("public:")) && s.may_see(k))
            })
            .filter(|k| matches(k))
            .collect(),
    };
    Ok(Reply::Data(
        serde_json::to_string(&listed).unwrap_or_else(|_| "[]".into()),
    ))
}
