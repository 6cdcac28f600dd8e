//! `atsign://` value references on `lookup` (atprotocol.md §3.5): a value `atsign://<key>@<owner>`
//! stands for the value of `<key>@<owner>` as the same connection may see it — for the owner
//! `@me:<key>@me`, for a pol-authenticated peer `@peer:<key>@me`, anonymously `public:<key>@me` —
//! falling back to `public:<key>@me`, followed up to [`DEPTH`] times (the reference's
//! `lookup.depth_of_resolution`, 3). A reference still unresolved after that, or one whose
//! target is missing, answers `data:null`, as in the reference.
//!
//! Unlike the reference (whose loop overwrites a found private value with the public lookup and
//! then fails on a missing public key), the first of the two candidates that exists wins, and
//! only a value that *starts* with `atsign://` is a reference.

use at_protocol::command::LookupOp;
use serde_json::Value;

use crate::context::Shared;
use crate::error::AtError;
use crate::keystore::{self, Read};
use crate::reply::{CmdResult, Reply};
use crate::session::{Access, Session};

/// How many references are followed.
pub const DEPTH: usize = 3;
const SCHEME: &str = "atsign://";

/// The `<key>@<owner>` a value refers to, if it is a reference.
pub fn target(value: &str) -> Option<&str> {
    let rest = value.trim().strip_prefix(SCHEME)?;
    (!rest.is_empty() && !rest.contains(char::is_whitespace)).then_some(rest)
}

/// Resolves `value` for a connection whose keys carry `prefix` (`@me:`, `@peer:` or `public:`);
/// `None` when it cannot be resolved. `visible` filters candidate keys (namespace rules of an
/// APKAM connection).
pub async fn resolve(
    shared: &Shared,
    value: String,
    prefix: &str,
    visible: impl Fn(&str) -> bool,
) -> Result<Option<String>, AtError> {
    let mut value = value;
    for _ in 0..DEPTH {
        let Some(to) = target(&value) else {
            return Ok(Some(value));
        };
        let mut candidates = vec![format!("{prefix}{to}")];
        if prefix != "public:" {
            candidates.push(format!("public:{to}"));
        }
        let mut next = None;
        for key in candidates.iter().filter(|k| visible(k)) {
            if let Read::Active(r) = keystore::read(shared, key).await? {
                next = r.value;
                break;
            }
        }
        match next {
            Some(v) => value = v,
            None => return Ok(None),
        }
    }
    Ok(target(&value).is_none().then_some(value))
}

/// A `lookup` reply with its value resolved: the value itself (`lookup:`), or the `data` member
/// (`lookup:all:`); `lookup:meta:` is left alone. `prefix` is the connection's key prefix.
pub async fn resolve_reply(s: &Session, reply: Reply, op: LookupOp, prefix: &str) -> CmdResult {
    // An APKAM connection follows references only into namespaces it may read.
    let visible = |k: &str| s.enrollment().is_none() || s.authorize(k, Access::Read).is_ok();
    match (op, reply) {
        (LookupOp::Value, Reply::Data(v)) if target(&v).is_some() => {
            let resolved = resolve(&s.shared, v, prefix, visible).await?;
            Ok(resolved.map_or_else(Reply::null, Reply::Data))
        }
        (LookupOp::All, Reply::Data(text)) => {
            let mut all: Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(_) => return Ok(Reply::Data(text)),
            };
            let Some(value) = all
                .get("data")
                .and_then(Value::as_str)
                .filter(|v| target(v).is_some())
                .map(str::to_string)
            else {
                return Ok(Reply::Data(text));
            };
            let resolved = resolve(&s.shared, value, prefix, visible).await?;
            all["data"] = resolved.map_or(Value::Null, Value::String);
            Ok(Reply::Data(all.to_string()))
        }
        (_, reply) => Ok(reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_leading_scheme_is_a_reference() {
        assert_eq!(
            target("atsign://phone.wavi@alice"),
            Some("phone.wavi@alice")
        );
        assert_eq!(target("  atsign://x@alice "), Some("x@alice"));
        assert_eq!(target("atsign://"), None);
        assert_eq!(target("see atsign://x@alice"), None);
        assert_eq!(target("atsign://a b"), None);
        assert_eq!(target("plain"), None);
    }
}
