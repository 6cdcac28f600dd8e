//! `enroll:list` and `enroll:fetch`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::AtError;
use crate::reply::{CmdResult, Reply};
use crate::session::Session;
use at_protocol::command::EnrollRequest;
use at_protocol::ErrorCode;

use super::record::{all_enrollments, given, load, may_manage, summary};

pub async fn list(s: &mut Session, p: &EnrollRequest) -> CmdResult {
    may_manage(s, &BTreeMap::new())?;
    let filter = p.enrollment_status_filter.as_ref();
    let mut out = Map::new();
    for (key, st) in all_enrollments(s).await? {
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
