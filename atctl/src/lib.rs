//! atctl: the command line for people and devices. The binary is a thin shell over [`run`]; the
//! pieces live here so they can be tested.

pub mod cli;
pub mod enroll;
pub mod error;
pub mod keyref;
pub mod keysfile;
pub mod notify;
pub mod onboard;
pub mod output;
pub mod read;
pub mod secret;
pub mod session;
pub mod sharing;
pub mod write;

use serde_json::json;

use cli::{AuthCmd, Cli, Cmd};
use error::Result;
use output::Output;
use session::Context;

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let out = Output {
        json: cli.global.json,
    };
    let ctx = Context::new(cli.global)?;
    match &cli.command {
        Cmd::Onboard(args) => onboard::run(&ctx, out, args).await,
        Cmd::Lookup { atsign } => {
            let atsign = session::parse_atsign(atsign)?;
            let (host, port) = ctx.lookup(&atsign).await?;
            out.emit(
                format!("{host}:{port}"),
                json!({"atsign": atsign.as_str(), "host": host, "port": port}),
            );
            Ok(())
        }
        Cmd::Auth(AuthCmd::Check { atsign }) => {
            let me = match atsign {
                Some(a) => session::parse_atsign(a)?,
                None => ctx.me(None)?,
            };
            let s = ctx.authenticated(&me).await?;
            let _ = s.conn.close().await;
            out.emit(
                format!("authenticated as {me}"),
                json!({"atsign": me.as_str(), "authenticated": true,
                       "enrollmentId": s.keys.enrollment_id}),
            );
            Ok(())
        }
        Cmd::Put(args) => write::put(&ctx, out, args).await,
        Cmd::Get(args) => read::get(&ctx, out, args).await,
        Cmd::Delete(args) => write::delete(&ctx, out, args).await,
        Cmd::Share(args) => write::share(&ctx, out, args).await,
        Cmd::Scan(args) => read::scan(&ctx, out, args).await,
        Cmd::Notify(args) => notify::notify(&ctx, out, args).await,
        Cmd::Monitor(args) => notify::monitor(&ctx, out, args).await,
        Cmd::Enroll(cmd) => enroll::run(&ctx, out, cmd).await,
        Cmd::Otp(args) => enroll::otp(&ctx, out, args).await,
    }
}
