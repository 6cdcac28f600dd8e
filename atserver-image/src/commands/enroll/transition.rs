//! `enroll:approve|deny|revoke|unrevoke|delete`: the allowed state transitions.

use serde_json::{json, Value};

use crate::error::AtError;
use crate::keystore;
use crate::metadata::MetaUpdate;
use crate::reply::{CmdResult, Reply};
use crate::session::Session;
use at_protocol::command::EnrollRequest;
use at_protocol::ErrorCode;

use super::record::{given, load, may_manage, record_key, save};
use super::request::store_default_keys;

pub async fn transition(s: &mut Session, op: &str, p: &EnrollRequest, force: bool) -> CmdResult {
    let id = given(&p.enrollment_id)
        .ok_or_else(|| AtError::new(ErrorCode::IllegalArguments, "enrollmentId is mandatory"))?;
    let mut st = load(s, id).await?.ok_or_else(|| {
        AtError::handler(
            ErrorCode::TooManyRequests,
            format!("enrollment_id: {id} is expired or invalid"),
        )
    })?;
    may_manage(s, &st.namespaces())?;
    let state = st.state().to_string();
    let allowed = match op {
        "approve" => state == "pending",
        "deny" => state == "pending",
        "revoke" => state == "approved",
        "unrevoke" => state == "revoked",
        _ => state == "denied" || state == "revoked",
    };
    if !allowed {
        return Err(AtError::handler(
            ErrorCode::InvalidEnrollmentStatus,
            format!("Cannot {op} a {state} enrollment. Only the allowed transitions are permitted"),
        ));
    }
    let own = s.enrollment().is_some_and(|e| e.id == id);
    if op == "revoke" && own && !force {
        return Err(AtError::handler(
            ErrorCode::EnrollmentRevokeSelf,
            "Current client cannot revoke its own enrollment",
        ));
    }
    let me = s.atsign().to_string();
    let new_state = match op {
        "approve" => "approved",
        "deny" => "denied",
        "revoke" => "revoked",
        "unrevoke" => "approved",
        _ => {
            keystore::delete(&s.shared, &record_key(id, &me)).await?;
            return Ok(Reply::Data(
                json!({"enrollmentId": id, "status": "deleted"}).to_string(),
            ));
        }
    };
    st.set_state(new_state);
    let expiry = st
        .value
        .get("apkamKeysExpiryInMillis")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let ttl = if new_state == "approved" {
        Some(expiry.max(0))
    } else {
        None
    };
    save(s, id, &st, ttl).await?;
    if op == "approve" {
        let app = st.str("appName").unwrap_or_default().to_lowercase();
        let device = st.str("deviceName").unwrap_or_default().to_lowercase();
        let key = format!("public:{app}.{device}.pkam.__pkams.__public_keys{me}");
        let value = json!({"apkamPublicKey": st.str("apkamPublicKey")}).to_string();
        keystore::put(&s.shared, &key, Some(value), &MetaUpdate::default(), true).await?;
        store_default_keys(s, id, p).await?;
    }
    if op == "revoke" && !own {
        s.shared.registry.drop_enrollment(id);
    }
    Ok(Reply::Data(
        json!({"status": new_state, "enrollmentId": id}).to_string(),
    ))
}
