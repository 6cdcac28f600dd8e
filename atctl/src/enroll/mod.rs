//! Extra devices (atprotocol.md §6.4): `otp` and `enroll list|approve|deny|revoke` on an approved
//! device are in `manage`; the new device's side (`enroll request`) is in [`request`]; the
//! `enroll:` command and reply both sides use are in `wire`.

mod manage;
pub mod request;
mod wire;

pub use manage::otp;

use at_protocol::command::EnrollOp;

use crate::cli::EnrollCmd;
use crate::error::Result;
use crate::output::Output;
use crate::session::Context;

pub async fn run(ctx: &Context, out: Output, cmd: &EnrollCmd) -> Result<()> {
    match cmd {
        EnrollCmd::Request(args) => request::run(ctx, out, args).await,
        EnrollCmd::List { status } => manage::list(ctx, out, status).await,
        EnrollCmd::Approve { id } => manage::approve(ctx, out, id).await,
        EnrollCmd::Deny { id } => manage::decide(ctx, out, EnrollOp::Deny, id, false).await,
        EnrollCmd::Revoke { id, force } => {
            manage::decide(ctx, out, EnrollOp::Revoke, id, *force).await
        }
    }
}
