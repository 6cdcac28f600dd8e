//! `config:block:add|remove|show` and the testing-mode `config:set|reset|print` (§3.8).

use std::collections::BTreeSet;

use crate::commands::strip_verb;
use crate::commands::write::{self, Read};
use crate::error::AtError;
use crate::metadata::MetaUpdate;
use crate::reply::{CmdResult, Reply};
use crate::session::Session;

fn blocklist_key(me: &str) -> String {
    format!("private:blocklist{me}")
}

async fn load(s: &Session) -> Result<BTreeSet<String>, AtError> {
    Ok(
        match write::read(&s.shared, &blocklist_key(s.atsign())).await? {
            Read::Active(r) => r
                .value
                .and_then(|v| serde_json::from_str::<serde_json::Value>(&v).ok())
                .and_then(|v| v.get("blockList").cloned())
                .and_then(|v| serde_json::from_value(v).ok())
                .unwrap_or_default(),
            _ => BTreeSet::new(),
        },
    )
}

/// True when `atsign` (normalised) is on the block list.
pub async fn is_blocked(s: &Session, atsign: &str) -> Result<bool, AtError> {
    Ok(load(s)
        .await?
        .iter()
        .any(|b| crate::atsign::normalize(b).is_ok_and(|b| b == atsign)))
}

pub async fn config(s: &mut Session, cmd: &str) -> CmdResult {
    let rest = strip_verb(cmd, "config:").ok_or_else(|| AtError::syntax("invalid config"))?;
    if let Some(r) = strip_verb(rest, "block:") {
        return block(s, r).await;
    }
    for op in ["set:", "reset:", "print:"] {
        if strip_verb(rest, op).is_some_and(|v| !v.is_empty()) {
            return Ok(Reply::data("testing mode disabled by default"));
        }
    }
    Err(AtError::syntax("invalid config"))
}

async fn block(s: &mut Session, rest: &str) -> CmdResult {
    let mut list = load(s).await?;
    let (op, args) = rest.split_once(':').unwrap_or((rest, ""));
    let me = s.atsign().to_string();
    let atsigns: Vec<&str> = args.split(' ').filter(|a| !a.is_empty()).collect();
    let valid = |a: &&str| a.starts_with('@') && a.len() > 1 && !a[1..].contains(['@', ':']);
    match op.trim().to_ascii_lowercase().as_str() {
        "show" if args.trim().is_empty() => {
            if list.is_empty() {
                return Ok(Reply::null());
            }
            return Ok(Reply::Data(
                serde_json::to_string(&list).unwrap_or_else(|_| "[]".into()),
            ));
        }
        "add" if !atsigns.is_empty() && atsigns.iter().all(valid) => {
            for a in atsigns {
                if crate::atsign::normalize(a).ok().as_deref() != Some(me.as_str()) {
                    list.insert(a.to_string());
                }
            }
        }
        "remove" if !atsigns.is_empty() && atsigns.iter().all(valid) => {
            if list.is_empty() {
                return Ok(Reply::null());
            }
            for a in atsigns {
                list.remove(a);
            }
        }
        _ => return Err(AtError::syntax("invalid config:block")),
    }
    let value = serde_json::json!({"blockList": list}).to_string();
    write::put(
        &s.shared,
        &blocklist_key(&me),
        Some(value),
        &MetaUpdate::default(),
        true,
    )
    .await?;
    Ok(Reply::data("success"))
}
