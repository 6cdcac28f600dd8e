//! `llookup`, `lookup`, `plookup` (atprotocol.md §3.5) with ttb/ttl checked on every read.

use serde_json::json;

use at_protocol::command::{LlookupParams, LookupOp, LookupParams};
use at_protocol::AtKey;

use crate::error::AtError;
use crate::keystore;
use crate::peer::cache;
use crate::reply::{CmdResult, Reply};
use crate::session::{Access, Auth, Session};
use crate::store::Record;

fn render(op: LookupOp, record: &Record) -> Reply {
    match op {
        LookupOp::Value => Reply::Data(record.value.clone().unwrap_or_else(|| "null".into())),
        LookupOp::Meta => Reply::Data(record.meta.to_lookup_json().to_string()),
        LookupOp::All => Reply::Data(
            json!({"key": record.key, "data": record.value, "metaData": record.meta.to_lookup_json()}).to_string(),
        ),
    }
}

/// Reads `key` (as `keystore::read` does, without copying the record) and answers per op:
/// missing/expired → AT0015, unborn → `data:null`.
async fn answer(s: &Session, key: &str, op: LookupOp) -> CmdResult {
    let record = s.shared.store.get(key).await?;
    let now = s.shared.clock.now_millis();
    match record {
        Some(r) if !r.meta.expired(now) => Ok(if r.meta.unborn(now) {
            Reply::null()
        } else {
            render(op, &r)
        }),
        _ => Err(AtError::not_found(key)),
    }
}

/// Counts the lookup for `stats:5/6`; buffered, so the reply never waits for it.
fn log_lookup(s: &Session, key: &str) {
    let parsed = AtKey::parse(key).ok();
    if parsed.as_ref().is_some_and(AtKey::is_hidden) {
        return;
    }
    let owner = parsed.as_ref().and_then(AtKey::owner).map(|o| o.as_str());
    let now = s.shared.clock.now_millis();
    s.shared.store.log_access(owner, Some(key), "lookup", now);
}

pub async fn llookup(s: &mut Session, p: LlookupParams) -> CmdResult {
    let key = p.key.to_string();
    if key == keystore::AT_SECRET {
        return Err(AtError::unauthorized("the CRAM secret cannot be read"));
    }
    s.authorize(&key, Access::Read)?;
    log_lookup(s, &key);
    answer(s, &key, p.operation).await
}

pub async fn lookup(s: &mut Session, p: LookupParams) -> CmdResult {
    let (op, name, owner) = (p.operation, p.key.clone(), p.owner.as_str().to_string());
    let bypass = p.bypass_cache == Some(true);
    let me = s.atsign().to_string();
    // The connection's own view: `public:`, `@peer:` or `@me:`.
    let prefix = match &s.auth {
        Auth::Anonymous => "public:".to_string(),
        Auth::Peer(peer) => format!("{peer}:"),
        Auth::Owner { .. } if owner == me => format!("{me}:"),
        Auth::Owner { .. } => {
            let cached = format!("cached:{me}:{name}{owner}");
            s.authorize(&cached, Access::Read)?;
            let found = cache::lookup_shared(&s.shared, &p.owner, &name, bypass).await?;
            return Ok(found.map_or_else(Reply::null, |r| render(op, &r)));
        }
    };
    let key = format!("{prefix}{name}{owner}");
    if s.is_owner() {
        s.authorize(&key, Access::Read)?;
    }
    log_lookup(s, &key);
    let reply = answer(s, &key, op).await?;
    super::value_ref::resolve_reply(s, reply, op, &prefix).await
}

pub async fn plookup(s: &mut Session, p: LookupParams) -> CmdResult {
    let (op, name, owner) = (p.operation, p.key.clone(), p.owner.as_str().to_string());
    let bypass = p.bypass_cache == Some(true);
    if name.contains(':') {
        return Err(AtError::syntax("invalid key in plookup"));
    }
    if owner == s.atsign() {
        let key = format!("public:{name}{owner}");
        log_lookup(s, &key);
        return answer(s, &key, op).await;
    }
    let found = cache::lookup_public(&s.shared, &p.owner, &name, bypass).await?;
    Ok(found.map_or_else(Reply::null, |r| render(op, &r)))
}
