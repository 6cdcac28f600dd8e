//! The `enroll:` command line and its JSON reply, shared by both sides of an enrollment.

use at_protocol::command::{EnrollOp, EnrollParams, EnrollRequest};
use at_protocol::Command;
use serde_json::Value;

use crate::error::{CtlError, Result};

pub(super) fn enroll_command(op: EnrollOp, request: EnrollRequest, force: bool) -> String {
    let mut p = EnrollParams::new(op, Some(request));
    p.force = force;
    Command::Enroll(p).to_string()
}

pub(super) fn json_reply(text: &str, what: &str) -> Result<Value> {
    serde_json::from_str(text.trim())
        .map_err(|_| CtlError::other(format!("{what}: unexpected reply {text}")))
}
