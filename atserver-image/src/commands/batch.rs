//! `batch:[{"id":1,"command":"update:…"},…]` (atprotocol.md §3.7).

use serde::Deserialize;
use serde_json::{json, Value};

use crate::commands::{normalize, route, strip_verb, Verb};
use crate::error::AtError;
use crate::reply::{CmdResult, Reply};
use crate::session::Session;

#[derive(Deserialize)]
struct Item {
    id: Value,
    command: String,
}

/// At most this many commands per batch.
const MAX_ITEMS: usize = 1000;

pub async fn batch(s: &mut Session, cmd: &str) -> CmdResult {
    let body = strip_verb(cmd, "batch:").ok_or_else(|| AtError::syntax("invalid batch"))?;
    let items: Vec<Item> =
        serde_json::from_str(body).map_err(|_| AtError::syntax("invalid batch JSON"))?;
    if items.len() > MAX_ITEMS {
        return Err(AtError::syntax(format!(
            "batch holds more than {MAX_ITEMS} commands"
        )));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let c = normalize(&item.command.replace('\n', ""));
        let verb = route(&c);
        // Only data verbs belong in a batch; no nesting and no session-changing verbs.
        let result = if matches!(verb, Verb::Update | Verb::UpdateMeta | Verb::Delete) {
            super::dispatch(s, verb, &c).await
        } else {
            Err(AtError::syntax(
                "only update and delete commands may be batched",
            ))
        };
        let response = match result {
            Ok(Reply::Data(d)) => json!({"data": d}),
            Ok(Reply::Error(e)) | Err(e) => {
                json!({"error_code": e.code.as_str(), "error_message": e.message})
            }
            Ok(_) => continue,
        };
        out.push(json!({"id": item.id, "response": response}));
    }
    Ok(Reply::Data(Value::Array(out).to_string()))
}
