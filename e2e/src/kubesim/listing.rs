//! Lists with label/field selectors and `limit`/`continue` pagination. A continue token remembers
//! the resourceVersion of the first page and the last key served.

use base64::Engine;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::objects::view;
use super::resources::ResourceType;
use super::selectors::Selectors;
use super::state::State;

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: u64,
    namespace: String,
    name: String,
}

/// One page of a list: objects after the continue token's position, matching the selectors.
pub fn list(
    state: &State,
    rt: &ResourceType,
    namespace: Option<&str>,
    sel: &Selectors,
    limit: Option<usize>,
    token: Option<&str>,
) -> ApiResult<Value> {
    let limit = limit.unwrap_or(usize::MAX);
    let token = match token {
        Some(c) => {
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .map_err(|_| ApiError::bad_request("invalid continue token"))?;
            Some(
                serde_json::from_slice::<ContinueToken>(&raw)
                    .map_err(|_| ApiError::bad_request("invalid continue token"))?,
            )
        }
        None => None,
    };
    let rv = token
        .as_ref()
        .map(|t| t.rv)
        .unwrap_or_else(|| state.store.current_rv());
    let after = token
        .as_ref()
        .map(|t| (t.namespace.clone(), t.name.clone()));
    // Only the page is copied: matching every object through a copy of its served view, and
    // copying the whole remainder for each page, made lists of large fleets slow, all under
    // the server lock.
    let selects = |o: &Value| {
        if sel.fields.is_empty() {
            sel.labels.matches(o)
        } else {
            sel.matches(&view(rt, o.clone()))
        }
    };
    let mut page: Vec<Value> = Vec::new();
    let mut last: Option<&(String, String)> = None;
    let mut remaining = 0usize;
    for (k, o) in state
        .store
        .list(&rt.group_resource(), namespace)
        .filter(|(k, _)| after.as_ref().is_none_or(|a| *k > a))
        .filter(|(_, o)| selects(o))
    {
        if page.len() < limit {
            page.push(view(rt, o.clone()));
            last = Some(k);
        } else {
            remaining += 1;
        }
    }
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let (true, Some((ns, name))) = (remaining > 0, last) {
        let token = ContinueToken {
            rv,
            namespace: ns.clone(),
            name: name.clone(),
        };
        let raw = serde_json::to_vec(&token).map_err(|e| ApiError::internal(e.to_string()))?;
        metadata["continue"] = json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw));
        metadata["remainingItemCount"] = json!(remaining);
    }
    Ok(
        json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": metadata, "items": page}),
    )
}
