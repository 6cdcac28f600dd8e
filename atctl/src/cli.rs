//! The command line: global options and one subcommand per task.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  any other failure (including a server refusing a request, e.g. AT0009 not authorised)
  2  usage error (bad flags or arguments, missing keys file, invalid key)
  3  authentication failure (wrong CRAM secret, keys not accepted, enrollment pending/denied/revoked)
  4  not found (atSign unknown to the directory, key does not exist)
  5  connection or TLS failure

Every global option also reads an environment variable (ATCTL_ROOT_SERVER, ATCTL_SERVER,
ATCTL_CA_BUNDLE, ATCTL_KEYS_DIR, ATCTL_JSON, ATCTL_ATSIGN).";

/// atctl: onboard an Atsign and use it from the command line.
#[derive(Debug, Parser)]
#[command(name = "atctl", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Cmd,
}

/// Options every subcommand understands.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// atDirectory (root server) that maps atSigns to their atServers, as host:port.
    #[arg(
        long,
        env = "ATCTL_ROOT_SERVER",
        global = true,
        value_name = "HOST:PORT"
    )]
    pub root_server: Option<String>,
    /// Talk to this atServer directly instead of asking the directory (host:port).
    #[arg(long, env = "ATCTL_SERVER", global = true, value_name = "HOST:PORT")]
    pub server: Option<String>,
    /// PEM bundle of the CAs to trust for the directory and atServers (default: the system bundle).
    #[arg(long, env = "ATCTL_CA_BUNDLE", global = true, value_name = "PEM")]
    pub ca_bundle: Option<PathBuf>,
    /// Folder of `.atKeys` files (default: ~/.atsign/keys).
    #[arg(long, env = "ATCTL_KEYS_DIR", global = true, value_name = "DIR")]
    pub keys_dir: Option<PathBuf>,
    /// Print machine-readable JSON on stdout (errors as JSON on stderr).
    /// (ATCTL_JSON accepts 1/true/yes/on and 0/false/no/off.)
    #[arg(
        long,
        env = "ATCTL_JSON",
        global = true,
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub json: bool,
    /// The atSign you act as (default: the owner named in the key, or the only keys file).
    #[arg(
        short = 'a',
        long = "atsign",
        env = "ATCTL_ATSIGN",
        global = true,
        value_name = "@ATSIGN"
    )]
    pub atsign: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Onboard an Atsign: authenticate once with its CRAM secret, create this device's keys, store the
    /// public halves on the atServer, switch to PKAM, disable CRAM and write the keys file.
    Onboard(OnboardArgs),
    /// Ask the directory where an atSign's server is.
    Lookup {
        /// The atSign, e.g. @alice.
        atsign: String,
    },
    /// Authentication commands.
    #[command(subcommand)]
    Auth(AuthCmd),
    /// Store a value: `public:k@me` (plain, signed), `k@me` (encrypted with the self key) or
    /// `@bob:k@me` (encrypted with the key shared with @bob).
    Put(PutArgs),
    /// Read a value (decrypting self and shared values).
    Get(KeyArgs),
    /// Delete a key.
    Delete(KeyArgs),
    /// Share a value with another atSign (the shared-key flow: client-side encryption).
    Share(ShareArgs),
    /// List keys.
    Scan(ScanArgs),
    /// Send a notification.
    Notify(NotifyArgs),
    /// Stream notifications until interrupted (Ctrl-C).
    Monitor(MonitorArgs),
    /// Add devices with APKAM enrollments: request (new device), list, approve, deny, revoke.
    #[command(subcommand)]
    Enroll(EnrollCmd),
    /// Get a one-time password a new device uses with `atctl enroll request`.
    Otp(OtpArgs),
}

/// Where the CRAM secret comes from (exactly one).
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct SecretSource {
    /// Read the CRAM secret from this file (surrounding whitespace ignored).
    #[arg(long, value_name = "FILE")]
    pub cram_secret_file: Option<PathBuf>,
    /// Read the CRAM secret from standard input.
    #[arg(long)]
    pub cram_secret_stdin: bool,
    /// Read the CRAM secret from the Kubernetes Secret the operator created (namespace/name), through
    /// your kubeconfig.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub from_secret: Option<String>,
}

#[derive(Debug, Args)]
pub struct OnboardArgs {
    /// The atSign to onboard, e.g. @alice.
    pub atsign: String,
    #[command(flatten)]
    pub secret: SecretSource,
    /// Overwrite an existing keys file.
    #[arg(long)]
    pub force: bool,
    /// Application name recorded with this device's enrollment (APKAM servers).
    #[arg(long, default_value = "atctl")]
    pub app_name: String,
    /// Device name recorded with this device's enrollment (default: the host name).
    #[arg(long)]
    pub device_name: Option<String>,
    /// Use the legacy (pre-APKAM) flow even if the server supports enrollments.
    #[arg(long)]
    pub legacy: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuthCmd {
    /// Authenticate with the keys file (PKAM) and report success.
    Check {
        /// The atSign (default: --atsign or the only keys file).
        atsign: Option<String>,
    },
}

/// Metadata for writes.
#[derive(Debug, Clone, Default, Args)]
pub struct MetaArgs {
    /// Time to live in milliseconds (the value disappears after it).
    #[arg(long, value_name = "MS")]
    pub ttl: Option<i64>,
    /// Time to birth in milliseconds (the value is invisible until then).
    #[arg(long, value_name = "MS")]
    pub ttb: Option<i64>,
    /// Time to refresh in seconds: how long recipients may cache a shared value (-1 = forever).
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub ttr: Option<i64>,
    /// Cascade delete: recipients drop their cached copy when the owner deletes the value.
    #[arg(long, value_name = "BOOL")]
    pub ccd: Option<bool>,
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The key: `name`, `name@me`, `public:name@owner` or `@bob:name@owner`.
    pub key: String,
    /// Namespace appended to the key name (`phone` + `-n wavi` = `phone.wavi`).
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// The value (UTF-8 text).
    pub value: String,
    #[command(flatten)]
    pub meta: MetaArgs,
}

#[derive(Debug, Args)]
pub struct ShareArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// Who to share with, e.g. @bob.
    #[arg(long = "with", value_name = "@ATSIGN")]
    pub with: String,
    /// The value to share (default: the current value of your self key of the same name).
    #[arg(long)]
    pub value: Option<String>,
    #[command(flatten)]
    pub meta: MetaArgs,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Only keys matching this regular expression.
    pub regex: Option<String>,
    /// Include hidden keys (names starting with `_`).
    #[arg(long)]
    pub show_hidden: bool,
}

#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// The key (`@bob:name@me`), or with --text the recipient (`@bob`).
    pub target: String,
    /// The value (encrypted for key notifications) or the text message.
    pub value: Option<String>,
    /// Send a text message instead of a key notification.
    #[arg(long)]
    pub text: bool,
    /// Notify a deletion instead of an update.
    #[arg(long)]
    pub delete: bool,
    /// Namespace appended to the key name.
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// How long the notification lives, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub ttln: Option<u64>,
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Only notifications whose key or sender matches this regular expression.
    pub regex: Option<String>,
    /// Replay stored notifications newer than this time (milliseconds since the epoch; 0 = all).
    #[arg(long, value_name = "EPOCH_MS")]
    pub since: Option<u64>,
    /// Also stream self notifications (e.g. enrollment requests).
    #[arg(long)]
    pub self_notifications: bool,
    /// Include the periodic stats notifications.
    #[arg(long)]
    pub stats: bool,
}

#[derive(Debug, Subcommand)]
pub enum EnrollCmd {
    /// On a new device: request access with an OTP, wait for approval, then write this device's
    /// keys file.
    Request(EnrollRequestArgs),
    /// List enrollments.
    List {
        /// Only enrollments in these states (pending, approved, denied, revoked).
        #[arg(long, value_name = "STATE")]
        status: Vec<String>,
    },
    /// Approve a pending enrollment (gives the new device the encryption keys).
    Approve {
        /// The enrollment id.
        id: String,
    },
    /// Deny a pending enrollment.
    Deny {
        /// The enrollment id.
        id: String,
    },
    /// Revoke an approved enrollment.
    Revoke {
        /// The enrollment id.
        id: String,
        /// Allow revoking this device's own enrollment.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct EnrollRequestArgs {
    /// The atSign to join, e.g. @alice.
    pub atsign: String,
    /// The one-time password from `atctl otp` on an approved device.
    #[arg(long)]
    pub otp: String,
    /// Application name of this device's enrollment.
    #[arg(long, default_value = "atctl")]
    pub app_name: String,
    /// Device name of this enrollment (default: the host name).
    #[arg(long)]
    pub device_name: Option<String>,
    /// Namespace access as `name:r` or `name:rw` (repeatable, at least one).
    #[arg(long = "namespace", value_name = "NS:ACCESS", required = true)]
    pub namespaces: Vec<String>,
    /// Give up waiting for approval after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub wait_secs: u64,
    /// Overwrite an existing keys file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct OtpArgs {
    /// How long the OTP stays valid, in milliseconds (server default when absent).
    #[arg(long, value_name = "MS")]
    pub ttl: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn undocumented(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        let here = format!("{path} {}", cmd.get_name());
        if cmd.get_about().is_none() && !path.is_empty() {
            missing.push(format!("{here}: no description"));
        }
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id != "help" && id != "version" && arg.get_help().is_none() {
                missing.push(format!("{here} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_name() != "help" {
                undocumented(sub, &here, missing);
            }
        }
    }

    #[test]
    fn every_command_and_flag_is_documented() {
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        undocumented(&cmd, "", &mut missing);
        assert!(missing.is_empty(), "undocumented: {missing:?}");
        let help = cmd.clone().render_long_help().to_string();
        for code in ["0 ", "1 ", "2 ", "3 ", "4 ", "5 "] {
            assert!(
                help.contains(&format!("  {code}")),
                "exit code {code} missing"
            );
        }
    }
}
