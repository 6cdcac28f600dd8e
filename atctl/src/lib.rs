//! atctl: the command line for people and devices. The binary is a thin shell over [`run`]; the
//! pieces live here so they can be tested.

pub mod atsign_arg;
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

/// The command line as clap sees it, with every option whose environment variable is set but
/// empty (`ATCTL_CA_BUNDLE=`) treated as unset rather than as an empty value.
pub fn command() -> clap::Command {
    command_with_env(|name| std::env::var_os(name))
}

fn command_with_env(var: impl Fn(&std::ffi::OsStr) -> Option<std::ffi::OsString>) -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let empty: Vec<clap::Id> = cmd
        .get_arguments()
        .filter(|a| a.get_env().and_then(&var).is_some_and(|v| v.is_empty()))
        .map(|a| a.get_id().clone())
        .collect();
    for id in empty {
        cmd = cmd.mut_arg(id, |a| a.env(None::<&'static str>));
    }
    cmd
}

/// Parses the process's arguments and environment (see [`command`]); exits on a usage error
/// as clap does.
pub fn parse() -> Cli {
    use clap::FromArgMatches;
    Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit())
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let out = Output {
        json: cli.global.json,
    };
    let ctx = Context::new(cli.global)?;
    match &cli.command {
        Cmd::Onboard(args) => onboard::run(&ctx, out, args).await,
        Cmd::Lookup { atsign } => {
            let atsign = atsign_arg::parse_atsign(atsign)?;
            let (host, port) = ctx.lookup(&atsign).await?;
            out.emit(
                format!("{host}:{port}"),
                json!({"atsign": atsign.as_str(), "host": host, "port": port}),
            );
            Ok(())
        }
        Cmd::Auth(AuthCmd::Check { atsign }) => {
            let me = match atsign {
                Some(a) => atsign_arg::parse_atsign(a)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_environment_variable_counts_as_unset() {
        // ATCTL_CA_BUNDLE= and ATCTL_KEYS_DIR= as a shell leaves them after `export X=`.
        let empty = |name: &std::ffi::OsStr| {
            (name == "ATCTL_CA_BUNDLE" || name == "ATCTL_KEYS_DIR").then(std::ffi::OsString::new)
        };
        let cmd = command_with_env(empty);
        for a in cmd.get_arguments() {
            if a.get_id() == "ca_bundle" || a.get_id() == "keys_dir" {
                assert_eq!(a.get_env(), None, "{}", a.get_id());
            }
            if a.get_id() == "root_server" {
                assert_eq!(a.get_env(), Some(std::ffi::OsStr::new("ATCTL_ROOT_SERVER")));
            }
        }
    }
}
