//! Verb dispatch (atprotocol.md §3.1): normalisation, the auth gate, then one handler per verb.

pub mod auth;
pub mod batch;
pub mod config_verb;
pub mod delete;
pub mod enroll;
pub mod info;
pub mod info_mtls;
pub mod keys;
pub mod lookup;
pub mod monitor;
pub mod notify;
pub mod notify_receive;
pub mod otp;
pub mod pattern;
pub mod peer_auth;
pub mod scan;
pub mod scan_cl;
pub mod stats;
pub mod stream;
pub mod sync;
pub mod update;
pub mod value_ref;

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use at_protocol::command::{route, Verb};
use at_protocol::Command;

use crate::error::AtError;
use crate::metrics::{CommandLabels, VerbLabel};
use crate::reply::{CmdResult, Reply};
use crate::session::{Auth, Session};

/// Verbs that need an owner-authenticated connection before their grammar is even checked:
/// the reference's (§3.2), plus `notify:list`/`notify:status`/`notify:all` (README).
fn requires_owner(verb: Verb) -> bool {
    verb.requires_auth()
        || matches!(
            verb,
            Verb::NotifyList | Verb::NotifyStatus | Verb::NotifyAll
        )
}

/// Runs one command line, recording metrics; errors become replies.
pub async fn execute(session: &mut Session, line: &str) -> Reply {
    let verb = route(line);
    if verb == Verb::Exit {
        return Reply::Close;
    }
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
            verb: verb.label().into(),
            outcome: outcome.into(),
        })
        .inc();
    m.latency
        .get_or_create(&VerbLabel {
            verb: verb.label().into(),
        })
        .observe(started.elapsed().as_secs_f64());
    if let Err(e) = &result {
        tracing::debug!(verb = verb.label(), code = %e.code, "command failed");
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
        if (requires_owner(verb) && !session.is_owner() && !peer_list) || anonymous_notify {
            return Err(AtError::unauthenticated(
                "Command cannot be executed without auth",
            ));
        }
        if let Some(en) = session.enrollment().cloned() {
            enroll::record::check_enrollment_active(session, &en.id).await?;
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
            Command::Batch(p) => batch::batch(session, p, dispatch).await,
            Command::SyncFrom(p) => sync::sync_from(session, p).await,
            Command::Info(kind) => info::info(session, kind).await,
            Command::Noop { delay_millis } => info::noop(delay_millis).await,
            Command::Enroll(p) => enroll::enroll(session, p).await,
            Command::Otp(p) => otp::otp(session, p).await,
            Command::Keys(p) => keys::keys(session, p).await,
            Command::Stream(p) => stream::stream(session, p).await,
        }
    })
}
