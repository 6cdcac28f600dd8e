//! Verb dispatch (atprotocol.md §3.1): normalisation, the auth gate, then one handler per verb.

pub mod auth;
pub mod batch;
pub mod config_verb;
pub mod delete;
pub mod enroll;
pub mod info;
pub mod lookup;
pub mod monitor;
pub mod notify;
pub mod scan;
pub mod stats;
pub mod sync;
pub mod update;
pub mod write;

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use at_protocol::Command;

use crate::error::AtError;
use crate::metadata::MetaUpdate;
use crate::metrics::{CommandLabels, VerbLabel};
use crate::reply::{CmdResult, Reply};
use crate::session::{Auth, Session};

/// The verb a command is routed to, also its metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Empty,
    From,
    Cram,
    Pkam,
    Pol,
    Update,
    UpdateMeta,
    Llookup,
    Plookup,
    Lookup,
    Scan,
    Delete,
    Stats,
    Config,
    Monitor,
    Notify,
    NotifyList,
    NotifyStatus,
    NotifyAll,
    NotifyRemove,
    NotifyFetch,
    Batch,
    SyncFrom,
    Info,
    Noop,
    Enroll,
    Otp,
    Keys,
    Unknown,
}

impl Verb {
    pub fn name(self) -> &'static str {
        match self {
            Verb::Empty => "empty",
            Verb::From => "from",
            Verb::Cram => "cram",
            Verb::Pkam => "pkam",
            Verb::Pol => "pol",
            Verb::Update => "update",
            Verb::UpdateMeta => "update_meta",
            Verb::Llookup => "llookup",
            Verb::Plookup => "plookup",
            Verb::Lookup => "lookup",
            Verb::Scan => "scan",
            Verb::Delete => "delete",
            Verb::Stats => "stats",
            Verb::Config => "config",
            Verb::Monitor => "monitor",
            Verb::Notify => "notify",
            Verb::NotifyList => "notify_list",
            Verb::NotifyStatus => "notify_status",
            Verb::NotifyAll => "notify_all",
            Verb::NotifyRemove => "notify_remove",
            Verb::NotifyFetch => "notify_fetch",
            Verb::Batch => "batch",
            Verb::SyncFrom => "sync",
            Verb::Info => "info",
            Verb::Noop => "noop",
            Verb::Enroll => "enroll",
            Verb::Otp => "otp",
            Verb::Keys => "keys",
            Verb::Unknown => "unknown",
        }
    }

    /// Verbs that need an owner-authenticated connection before their grammar is even checked.
    fn requires_owner(self) -> bool {
        matches!(
            self,
            Verb::Update
                | Verb::UpdateMeta
                | Verb::Llookup
                | Verb::Plookup
                | Verb::Delete
                | Verb::Stats
                | Verb::Config
                | Verb::Monitor
                | Verb::NotifyFetch
                | Verb::NotifyRemove
                | Verb::NotifyList
                | Verb::NotifyAll
                | Verb::NotifyStatus
                | Verb::Batch
                | Verb::SyncFrom
                | Verb::Otp
                | Verb::Keys
        )
    }
}

/// Lower-cases the verb part (§1.3): before the first `:`, or everything when there is none.
pub fn normalize(command: &str) -> String {
    let trimmed = command.trim();
    match trimmed.find(':') {
        Some(i) => {
            let head: String = trimmed[..i]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            format!("{}{}", head.to_lowercase(), &trimmed[i..])
        }
        None => trimmed.to_lowercase(),
    }
}

fn has_prefix(cmd: &str, prefix: &str) -> bool {
    cmd.len() >= prefix.len()
        && cmd.is_char_boundary(prefix.len())
        && cmd[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Routes a normalised command in the reference order.
pub fn route(cmd: &str) -> Verb {
    let p = |s: &str| has_prefix(cmd, s);
    if cmd.is_empty() {
        Verb::Empty
    } else if p("from:") {
        Verb::From
    } else if p("cram:") {
        Verb::Cram
    } else if p("pkam:") {
        Verb::Pkam
    } else if p("update:meta:") {
        Verb::UpdateMeta
    } else if p("update:") {
        Verb::Update
    } else if p("llookup:") {
        Verb::Llookup
    } else if p("plookup:") {
        Verb::Plookup
    } else if p("lookup:") {
        Verb::Lookup
    } else if p("scan") {
        Verb::Scan
    } else if cmd == "pol" {
        Verb::Pol
    } else if p("delete:") {
        Verb::Delete
    } else if p("stats") {
        Verb::Stats
    } else if p("config:") {
        Verb::Config
    } else if p("monitor") {
        Verb::Monitor
    } else if p("notify:list") {
        Verb::NotifyList
    } else if p("notify:status") {
        Verb::NotifyStatus
    } else if p("notify:all") {
        Verb::NotifyAll
    } else if p("notify:remove:") {
        Verb::NotifyRemove
    } else if p("notify:fetch") {
        Verb::NotifyFetch
    } else if p("notify:") {
        Verb::Notify
    } else if p("batch:") {
        Verb::Batch
    } else if p("sync:from") {
        Verb::SyncFrom
    } else if cmd == "info" || p("info:") {
        Verb::Info
    } else if p("noop:") {
        Verb::Noop
    } else if p("enroll:") {
        Verb::Enroll
    } else if p("otp:") {
        Verb::Otp
    } else if p("keys:") {
        Verb::Keys
    } else {
        Verb::Unknown
    }
}

/// Runs one command line, recording metrics; errors become replies.
pub async fn execute(session: &mut Session, line: &str) -> Reply {
    let cmd = normalize(line);
    if cmd == "@exit" {
        return Reply::Close;
    }
    let verb = route(&cmd);
    let started = Instant::now();
    let result = dispatch(session, verb, line).await;
    let m = &session.shared.metrics;
    let outcome = if result.is_ok() && !matches!(result, Ok(Reply::Error(_))) {
        "ok"
    } else {
        "error"
    };
    m.commands
        .get_or_create(&CommandLabels {
            verb: verb.name().into(),
            outcome: outcome.into(),
        })
        .inc();
    m.latency
        .get_or_create(&VerbLabel {
            verb: verb.name().into(),
        })
        .observe(started.elapsed().as_secs_f64());
    if let Err(e) = &result {
        tracing::debug!(verb = verb.name(), code = %e.code, "command failed");
    }
    result.unwrap_or_else(Reply::Error)
}

/// Dispatch used by `execute` and by `batch` (boxed because batch recurses into it).
///
/// The auth gate runs on the routed verb before the grammar, as in the reference server; the
/// grammar itself is `at_protocol::Command::parse`.
pub fn dispatch<'a>(
    session: &'a mut Session,
    verb: Verb,
    line: &'a str,
) -> Pin<Box<dyn Future<Output = CmdResult> + Send + 'a>> {
    Box::pin(async move {
        let anonymous_notify = verb == Verb::Notify && matches!(session.auth, Auth::Anonymous);
        // A pol-authenticated peer may list what was sent to it (§3.6).
        let peer_list = verb == Verb::NotifyList && matches!(session.auth, Auth::Peer(_));
        if (verb.requires_owner() && !session.is_owner() && !peer_list) || anonymous_notify {
            return Err(AtError::unauthenticated(
                "Command cannot be executed without auth",
            ));
        }
        if let Some(en) = session.enrollment().cloned() {
            enroll::check_enrollment_active(session, &en.id).await?;
        }
        if verb == Verb::Empty {
            return Err(AtError::syntax("invalid command"));
        }
        let command = Command::parse(line).map_err(|e| AtError::syntax(e.to_string()))?;
        match command {
            Command::Exit => Ok(Reply::Close),
            Command::From(p) => auth::from(session, p).await,
            Command::Cram { digest } => auth::cram(session, &digest).await,
            Command::Pkam(p) => auth::pkam(session, p).await,
            Command::Pol => auth::pol(session).await,
            Command::To(to) => info::to(session, &to).await,
            Command::Update(p) => update::update(session, p).await,
            Command::UpdateJson(p) => update::update_json(session, p).await,
            Command::UpdateMeta(p) => update::update_meta(session, p).await,
            Command::Llookup(p) => lookup::llookup(session, p).await,
            Command::Lookup(p) => lookup::lookup(session, p).await,
            Command::Plookup(p) => lookup::plookup(session, p).await,
            Command::Delete(p) => delete::delete(session, p).await,
            Command::Scan(p) => scan::scan(session, p).await,
            Command::Stats(p) => stats::stats(session, p).await,
            Command::Config(p) => config_verb::config(session, p).await,
            Command::Monitor(p) => monitor::monitor(session, p).await,
            Command::Notify(p) => notify::notify(session, p).await,
            Command::NotifyList(p) => notify::list(session, p).await,
            Command::NotifyStatus { id } => notify::status(session, &id).await,
            Command::NotifyAll(p) => notify::all(session, p).await,
            Command::NotifyRemove { id } => notify::remove(session, &id).await,
            Command::NotifyFetch { id } => notify::fetch(session, &id).await,
            Command::Batch(p) => batch::batch(session, p).await,
            Command::SyncFrom(p) => sync::sync_from(session, p).await,
            Command::Info(kind) => info::info(session, kind).await,
            Command::Noop { delay_millis } => info::noop(delay_millis).await,
            Command::Enroll(p) => enroll::enroll(session, p).await,
            Command::Otp(p) => enroll::otp(session, p).await,
            Command::Keys(p) => enroll::keys(session, p).await,
        }
    })
}

/// The metadata fragment of a command as this server's merge input.
pub fn meta_update(md: &at_protocol::Metadata) -> Result<MetaUpdate, AtError> {
    let mut update = MetaUpdate::default();
    for (name, value) in md.fragment_items() {
        // Caller-asserted timestamps (cAt/uAt/eAt/aAt) are accepted and not stored.
        update.set(name, &value)?;
    }
    Ok(update)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_routes() {
        assert_eq!(normalize("  SCAN Foo "), "scan foo");
        assert_eq!(normalize("LLookup:Phone@Alice"), "llookup:Phone@Alice");
        assert_eq!(route("update:meta:x@alice:ttl:1"), Verb::UpdateMeta);
        assert_eq!(route("notify:list"), Verb::NotifyList);
        assert_eq!(route("notify:id:1:@bob:x@alice:v"), Verb::Notify);
        assert_eq!(route("sync:5"), Verb::Unknown);
        assert_eq!(route("info:brief"), Verb::Info);
        assert_eq!(route("polx"), Verb::Unknown);
    }
}
