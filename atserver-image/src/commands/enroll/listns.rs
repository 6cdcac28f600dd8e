//! `enroll:listns:<namespace>` (3.15), as the reference's enroll handler does it: for an APKAM
//! connection whose approved enrollment may read the namespace, the approved enrollments with
//! access to it (exact or suffix match, or `*`), as `[{"enrollmentId","access","metadata"}]`.

use at_protocol::ErrorCode;
use serde_json::{json, Map, Value};

use super::record::{all_enrollments, load, ENROLLMENT_SUFFIX};
use crate::error::AtError;
use crate::reply::{CmdResult, Reply};
use crate::session::Session;

fn illegal(msg: impl Into<String>) -> AtError {
    AtError::new(ErrorCode::IllegalArguments, msg.into())
}

/// The access an enrollment's namespaces give to `namespace`: an exact or suffix match, or `*`.
fn access_for(namespaces: &Map<String, Value>, namespace: &str) -> Option<String> {
    namespaces
        .iter()
        .find(|(ns, _)| {
            ns.as_str() == "*" || ns.as_str() == namespace || namespace.ends_with(&format!(".{ns}"))
        })
        .and_then(|(_, a)| a.as_str().map(str::to_string))
}

pub async fn listns(s: &mut Session, namespace: Option<&str>) -> CmdResult {
    let namespace = namespace
        .filter(|n| !n.is_empty())
        .ok_or_else(|| illegal("namespace is required for enroll:listns"))?;
    let Some(caller) = s.enrollment().map(|e| e.id.clone()) else {
        return Err(AtError::unauthenticated(
            "enroll:listns requires APKAM authentication",
        ));
    };
    let own = load(s, &caller).await?;
    let own_namespaces = own
        .as_ref()
        .filter(|st| st.state() == "approved")
        .and_then(|st| {
            st.value
                .get("namespaces")
                .and_then(Value::as_object)
                .cloned()
        })
        .ok_or_else(|| AtError::unauthorized("Caller enrollment is not in approved state"))?;
    if access_for(&own_namespaces, namespace).is_none() {
        return Err(AtError::unauthorized(format!(
            "Caller enrollment is not authorised for namespace \"{namespace}\""
        )));
    }
    let mut members = Vec::new();
    for (key, st) in all_enrollments(s).await? {
        if st.state() != "approved" {
            continue;
        }
        let Some((id, _)) = key.split_once(ENROLLMENT_SUFFIX) else {
            continue;
        };
        let Some(namespaces) = st.value.get("namespaces").and_then(Value::as_object) else {
            continue;
        };
        if let Some(access) = access_for(namespaces, namespace) {
            members.push(json!({
                "enrollmentId": id,
                "access": access,
                "metadata": st.value.get("metadata").cloned().unwrap_or(Value::Null),
            }));
        }
    }
    Ok(Reply::Data(Value::Array(members).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_access_is_exact_suffix_or_star() {
        let ns: Map<String, Value> = serde_json::from_str(r#"{"wavi":"rw","buzz":"r"}"#).unwrap();
        assert_eq!(access_for(&ns, "wavi").as_deref(), Some("rw"));
        assert_eq!(access_for(&ns, "app.buzz").as_deref(), Some("r"));
        assert_eq!(access_for(&ns, "other"), None);
        let star: Map<String, Value> = serde_json::from_str(r#"{"*":"r"}"#).unwrap();
        assert_eq!(access_for(&star, "anything").as_deref(), Some("r"));
    }
}
