//! `config:block:add|remove|show` and the testing-mode `config:set|reset|print` (§3.8).

use std::collections::BTreeSet;

use at_protocol::command::ConfigParams;

use crate::error::AtError;
use crate::keystore::{self, Read};
use crate::metadata::MetaUpdate;
use crate::reply::{CmdResult, Reply};
use crate::session::Session;

fn blocklist_key(me: &str) -> String {
    format!("private:blocklist{me}")
}

async fn load(s: &Session) -> Result<BTreeSet<String>, AtError> {
    Ok(
        match keystore::read(&s.shared, &blocklist_key(s.atsign())).await? {
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
        .any(|b| at_protocol::AtSign::parse(b).is_ok_and(|b| b.as_str() == atsign)))
}

pub async fn config(s: &mut Session, p: ConfigParams) -> CmdResult {
    let me = s.atsign().to_string();
    let mut list = load(s).await?;
    match p {
        ConfigParams::BlockShow => {
            if list.is_empty() {
                return Ok(Reply::null());
            }
            return Ok(Reply::Data(
                serde_json::to_string(&list).unwrap_or_else(|_| "[]".into()),
            ));
        }
        ConfigParams::BlockAdd(atsigns) => {
            for a in atsigns {
                if !at_protocol::AtSign::parse(&a).is_ok_and(|a| a.as_str() == me) {
                    list.insert(a);
                }
            }
        }
        ConfigParams::BlockRemove(atsigns) => {
            if list.is_empty() {
                return Ok(Reply::null());
            }
            for a in atsigns {
                list.remove(&a);
            }
        }
        ConfigParams::Set { .. } | ConfigParams::Reset(_) | ConfigParams::Print(_) => {
            return Ok(Reply::data("testing mode disabled by default"));
        }
    }
    let value = serde_json::json!({"blockList": list}).to_string();
    keystore::put(
        &s.shared,
        &blocklist_key(&me),
        Some(value),
        &MetaUpdate::default(),
        true,
    )
    .await?;
    Ok(Reply::data("success"))
}
