//! APKAM enrollment, `enroll:*` (atprotocol.md §6.3–6.4): one file per operation family; the
//! stored record and the checks pkam and dispatch make are in [`record`].

pub mod list;
pub mod listns;
pub mod record;
pub mod request;
pub mod transition;
pub mod update;

use at_protocol::command::{EnrollOp, EnrollParams};

use crate::error::AtError;
use crate::reply::CmdResult;
use crate::session::Session;

pub async fn enroll(s: &mut Session, p: EnrollParams) -> CmdResult {
    let op = p.operation;
    let force = p.force;
    let list_namespace = p.list_namespace;
    let p = p.request.unwrap_or_default();
    if op != EnrollOp::Request && !s.is_owner() {
        return Err(AtError::unauthenticated(
            "Command cannot be executed without auth",
        ));
    }
    match op {
        EnrollOp::Request => request::request(s, &p).await,
        EnrollOp::Approve
        | EnrollOp::Deny
        | EnrollOp::Revoke
        | EnrollOp::Unrevoke
        | EnrollOp::Delete => transition::transition(s, op.as_str(), &p, force).await,
        EnrollOp::List => list::list(s, &p).await,
        EnrollOp::Fetch => list::fetch(s, &p).await,
        EnrollOp::Update => update::update(s, &p).await,
        EnrollOp::ListNs => listns::listns(s, list_namespace.as_deref()).await,
    }
}
