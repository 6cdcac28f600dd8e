//! `batch:[{"id":1,"command":"update:…"},…]` (atprotocol.md §3.7).

use std::future::Future;
use std::pin::Pin;

use at_protocol::command::{route, BatchParams, Verb};
use serde_json::{json, Value};

use crate::error::AtError;
use crate::reply::{CmdResult, Reply};
use crate::session::Session;

/// At most this many commands per batch.
const MAX_ITEMS: usize = 1000;

/// The verb router that runs each item, handed in by the router itself (which routes `batch`
/// here), so this module does not import its parent.
pub type Run = for<'a> fn(
    &'a mut Session,
    Verb,
    &'a str,
) -> Pin<Box<dyn Future<Output = CmdResult> + Send + 'a>>;

pub async fn batch(s: &mut Session, p: BatchParams, run: Run) -> CmdResult {
    let items = p.requests;
    if items.len() > MAX_ITEMS {
        return Err(AtError::syntax(format!(
            "batch holds more than {MAX_ITEMS} commands"
        )));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let line = item.command.replace('\n', "");
        let verb = route(&line);
        // Only data verbs belong in a batch; no nesting and no session-changing verbs.
        let result = if matches!(verb, Verb::Update | Verb::UpdateMeta | Verb::Delete) {
            run(s, verb, &line).await
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
