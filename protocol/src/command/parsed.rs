//! One parsed command line: the [`Command`] enum over every verb, the dispatcher that picks the
//! verb family's grammar ([`Command::parse`]) and the canonical wire form (`Display`).

use std::fmt;

use super::admin::{ConfigParams, InfoKind, OtpParams, StatsParams};
use super::auth::{FromParams, PkamParams};
use super::cursor::Cursor;
use super::data::{
    DeleteParams, LlookupParams, LookupParams, ScanParams, Update, UpdateJsonParams,
    UpdateMetaParams, UpdateParams,
};
use super::enroll::{EnrollParams, KeysParams};
use super::error::ParseError;
use super::normalise::normalise;
use super::notify::{MonitorParams, NotifyAllParams, NotifyListParams, NotifyParams};
use super::stream::StreamParams;
use super::sync::{BatchParams, SyncFromParams};
use super::{admin, auth, data, enroll, notify, stream, sync};
use crate::atsign::AtSign;

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    From(FromParams),
    Cram {
        digest: String,
    },
    Pkam(PkamParams),
    Pol,
    /// `to:@bob` (≥3.15 first verb for peers).
    To(AtSign),
    Update(UpdateParams),
    UpdateJson(UpdateJsonParams),
    UpdateMeta(UpdateMetaParams),
    Llookup(LlookupParams),
    Lookup(LookupParams),
    Plookup(LookupParams),
    Delete(DeleteParams),
    Scan(ScanParams),
    Stats(StatsParams),
    Config(ConfigParams),
    Monitor(MonitorParams),
    Notify(NotifyParams),
    NotifyList(NotifyListParams),
    NotifyStatus {
        id: String,
    },
    NotifyFetch {
        id: String,
    },
    NotifyRemove {
        id: String,
    },
    NotifyAll(NotifyAllParams),
    SyncFrom(SyncFromParams),
    Batch(BatchParams),
    Info(InfoKind),
    Noop {
        delay_millis: u64,
    },
    Enroll(EnrollParams),
    Otp(OtpParams),
    Keys(KeysParams),
    /// `stream:init|send|receive|done|resume` (legacy relay file transfer, at_client's `stream()`).
    Stream(StreamParams),
    /// `@exit`
    Exit,
}

/// `\S+` after a fixed prefix.
fn rest_word(c: &mut Cursor<'_>) -> Result<String, ParseError> {
    let w = c.take_rest();
    if w.is_empty() || w.contains(char::is_whitespace) {
        return Err(ParseError::syntax("expected one word"));
    }
    Ok(w.to_string())
}

impl Command {
    /// Parses one command line (without its newline). Never panics.
    pub fn parse(line: &str) -> Result<Command, ParseError> {
        let text = normalise(line);
        let mut c = Cursor::new(&text);
        if text == "@exit" {
            return Ok(Command::Exit);
        }
        if text == "pol" {
            return Ok(Command::Pol);
        }
        // Order follows the reference dispatcher (§3.1): longer prefixes first.
        let cmd = if c.eat("from:") {
            Command::From(auth::parse_from(&mut c)?)
        } else if c.eat("cram:") {
            let digest = c.take_rest();
            if digest.is_empty() {
                return Err(ParseError::syntax("missing digest"));
            }
            Command::Cram {
                digest: digest.to_string(),
            }
        } else if c.eat("pkam:") {
            Command::Pkam(auth::parse_pkam(&mut c)?)
        } else if c.peek("update:meta:") || text.eq_ignore_ascii_case("update:meta") {
            c.eat("update:meta");
            Command::UpdateMeta(data::parse_update_meta(&mut c)?)
        } else if c.peek("update:") {
            c.eat("update");
            match data::parse_update(&mut c)? {
                Update::Plain(p) => Command::Update(p),
                Update::Json(p) => Command::UpdateJson(p),
            }
        } else if c.eat("llookup") {
            Command::Llookup(data::parse_llookup(&mut c)?)
        } else if c.eat("plookup:") {
            Command::Plookup(data::parse_lookup(&mut c)?)
        } else if c.eat("lookup:") {
            Command::Lookup(data::parse_lookup(&mut c)?)
        } else if c.eat("scan") {
            Command::Scan(data::parse_scan(&mut c)?)
        } else if c.peek("delete:") {
            c.eat("delete");
            Command::Delete(data::parse_delete(&mut c)?)
        } else if c.eat("stats") {
            Command::Stats(admin::parse_stats(&mut c)?)
        } else if c.eat("config:") {
            Command::Config(admin::parse_config(&mut c)?)
        } else if c.eat("monitor") {
            Command::Monitor(notify::parse_monitor(&mut c)?)
        } else if c.eat("notify:list") {
            Command::NotifyList(notify::parse_notify_list(&mut c)?)
        } else if c.eat("notify:status:") {
            Command::NotifyStatus {
                id: rest_word(&mut c)?,
            }
        } else if c.eat("notify:all:") {
            Command::NotifyAll(notify::parse_notify_all(&mut c)?)
        } else if c.eat("notify:remove:") {
            let id = rest_word(&mut c)?;
            if !id
                .chars()
                .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '-')
            {
                return Err(ParseError::syntax("invalid notification id"));
            }
            Command::NotifyRemove { id }
        } else if c.eat("notify:fetch:") {
            Command::NotifyFetch {
                id: rest_word(&mut c)?,
            }
        } else if c.peek("notify:") {
            c.eat("notify");
            Command::Notify(notify::parse_notify(&mut c)?)
        } else if c.eat("batch:") {
            Command::Batch(sync::parse_batch(&mut c)?)
        } else if c.eat("sync:from") {
            Command::SyncFrom(sync::parse_sync_from(&mut c)?)
        } else if c.eat("info") {
            Command::Info(admin::parse_info(&mut c)?)
        } else if c.eat("noop:") {
            Command::Noop {
                delay_millis: admin::parse_noop(&mut c)?,
            }
        } else if c.eat("enroll:") {
            Command::Enroll(enroll::parse_enroll(&mut c)?)
        } else if c.eat("otp:") {
            Command::Otp(admin::parse_otp(&mut c)?)
        } else if c.eat("keys:") {
            Command::Keys(enroll::parse_keys(&mut c)?)
        } else if c.eat("to:") {
            Command::To(AtSign::parse(&rest_word(&mut c)?)?)
        } else if c.eat("stream:") {
            Command::Stream(stream::parse_stream(&mut c)?)
        } else {
            return Err(ParseError::UnknownVerb);
        };
        Ok(cmd)
    }

    /// The verb name, for logs and metrics labels.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::From(_) => "from",
            Command::Cram { .. } => "cram",
            Command::Pkam(_) => "pkam",
            Command::Pol => "pol",
            Command::To(_) => "to",
            Command::Update(_) => "update",
            Command::UpdateJson(_) => "update:json",
            Command::UpdateMeta(_) => "update:meta",
            Command::Llookup(_) => "llookup",
            Command::Lookup(_) => "lookup",
            Command::Plookup(_) => "plookup",
            Command::Delete(_) => "delete",
            Command::Scan(_) => "scan",
            Command::Stats(_) => "stats",
            Command::Config(_) => "config",
            Command::Monitor(_) => "monitor",
            Command::Notify(_) => "notify",
            Command::NotifyList(_) => "notify:list",
            Command::NotifyStatus { .. } => "notify:status",
            Command::NotifyFetch { .. } => "notify:fetch",
            Command::NotifyRemove { .. } => "notify:remove",
            Command::NotifyAll(_) => "notify:all",
            Command::SyncFrom(_) => "sync:from",
            Command::Batch(_) => "batch",
            Command::Info(_) => "info",
            Command::Noop { .. } => "noop",
            Command::Enroll(_) => "enroll",
            Command::Otp(_) => "otp",
            Command::Keys(_) => "keys",
            Command::Stream(_) => "stream",
            Command::Exit => "@exit",
        }
    }

    /// Whether the reference gates this verb behind owner authentication (§3.2).
    pub fn requires_auth(&self) -> bool {
        matches!(
            self,
            Command::Update(_)
                | Command::UpdateJson(_)
                | Command::UpdateMeta(_)
                | Command::Llookup(_)
                | Command::Plookup(_)
                | Command::Delete(_)
                | Command::Stats(_)
                | Command::Config(_)
                | Command::Monitor(_)
                | Command::NotifyFetch { .. }
                | Command::NotifyRemove { .. }
                | Command::SyncFrom(_)
                | Command::Batch(_)
                | Command::Otp(_)
                | Command::Keys(_)
        )
    }
}

impl std::str::FromStr for Command {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Command::parse(s)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::From(p) => p.fmt(f),
            Command::Cram { digest } => write!(f, "cram:{digest}"),
            Command::Pkam(p) => p.fmt(f),
            Command::Pol => f.write_str("pol"),
            Command::To(a) => write!(f, "to:{a}"),
            Command::Update(p) => p.fmt(f),
            Command::UpdateJson(p) => p.fmt(f),
            Command::UpdateMeta(p) => p.fmt(f),
            Command::Llookup(p) => p.fmt(f),
            Command::Lookup(p) => p.fmt_with("lookup", f),
            Command::Plookup(p) => p.fmt_with("plookup", f),
            Command::Delete(p) => p.fmt(f),
            Command::Scan(p) => p.fmt(f),
            Command::Stats(p) => p.fmt(f),
            Command::Config(p) => p.fmt(f),
            Command::Monitor(p) => p.fmt(f),
            Command::Notify(p) => p.fmt(f),
            Command::NotifyList(p) => p.fmt(f),
            Command::NotifyStatus { id } => write!(f, "notify:status:{id}"),
            Command::NotifyFetch { id } => write!(f, "notify:fetch:{id}"),
            Command::NotifyRemove { id } => write!(f, "notify:remove:{id}"),
            Command::NotifyAll(p) => p.fmt(f),
            Command::SyncFrom(p) => p.fmt(f),
            Command::Batch(p) => p.fmt(f),
            Command::Info(k) => k.fmt(f),
            Command::Noop { delay_millis } => write!(f, "noop:{delay_millis}"),
            Command::Enroll(p) => p.fmt(f),
            Command::Otp(p) => p.fmt(f),
            Command::Keys(p) => p.fmt(f),
            Command::Stream(p) => p.fmt(f),
            Command::Exit => f.write_str("@exit"),
        }
    }
}
