//! `enroll:list` and `enroll:fetch`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::AtError;
use crate::reply::{CmdResult, Reply};
use crate::session::Session;
use at_protocol::command::EnrollRequest;
use at_protocol::ErrorCode;

use super::record::{all_enrollments, given, load, may_manage, record_key, summary};

/// `enroll:list`: every enrollment for a manager (CRAM, PKAM, or an enrollment with
/// `__manage`); an enrollment without `__manage` sees only its own record, as in the reference.
pub async fn list(s: &mut Session, p: &EnrollRequest) -> CmdResult {
    let own_only = s
        .enrollment()
        .filter(|en| !en.namespaces.contains_key("__manage"))
        .map(|en| record_key(&en.id, s.atsign()));
    if own_only.is_none() {
        may_manage(s, &BTreeMap::new())?;
    }
    let filter = p.enrollment_status_filter.as_ref();
    let mut out = Map::new();
    for (key, st) in all_enrollments(s).await? {
        if own_only.as_ref().is_some_and(|own| *own != key) {
            continue;
        }
        if filter
            .as_ref()
            .is_none_or(|f| f.iter().any(|x| x == st.state()))
        {
            out.insert(key, summary(&st));
        }
    }
    Ok(Reply::Data(Value::Object(out).to_string()))
}

pub async fn fetch(s: &mut Session, p: &EnrollRequest) -> CmdResult {
    let id = given(&p.enrollment_id)
        .ok_or_else(|| AtError::new(ErrorCode::IllegalArguments, "enrollmentId is mandatory"))?;
    if s.enrollment().is_some_and(|e| e.id != id) {
        may_manage(s, &BTreeMap::new())?;
    }
    let st = load(s, id).await?.ok_or_else(|| {
        AtError::handler(
            ErrorCode::TooManyRequests,
            format!("enrollment_id: {id} is expired or invalid"),
        )
    })?;
    Ok(Reply::Data(summary(&st).to_string()))
}
