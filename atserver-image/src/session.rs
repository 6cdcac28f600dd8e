//! Per-connection state machine and the read/dispatch/write loop.
//!
//! States: anonymous → owner (CRAM or PKAM, optionally bound to an APKAM enrollment), or
//! anonymous → peer (an atServer proven with `from:@peer` + `pol`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use at_protocol::codec::{Line, LineCodec};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast;
use tokio_util::codec::FramedRead;

use crate::commands;
use at_protocol::{AtKey, ErrorCode, KeyKind, Prompt};

use crate::error::AtError;
use crate::limits::{ConnEntry, ConnKind};
use crate::notifications::{stats_notification, Event, Kind};
use crate::reply::{render, Reply};
use crate::server::Shared;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Cram,
    Pkam,
}

/// An approved APKAM enrollment bound to a connection.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub id: String,
    /// namespace → "r" | "rw"
    pub namespaces: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub enum Auth {
    Anonymous,
    Owner {
        method: AuthMethod,
        enrollment: Option<Enrollment>,
    },
    /// A peer atServer proven with from/pol (§6.5).
    Peer(String),
}

/// A `from:` challenge awaiting cram/pkam.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub atsign: String,
    pub text: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct MonitorSpec {
    pub regex: regex::Regex,
    pub self_notifications: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

pub struct Session {
    pub shared: Arc<Shared>,
    pub peer_addr: SocketAddr,
    pub session_id: String,
    pub auth: Auth,
    pub challenge: Option<Challenge>,
    pub json_errors: bool,
    pub auth_failures: u32,
    pub monitor: Option<MonitorSpec>,
    /// Lines to write after the current reply (monitor replay).
    pub pending_lines: Vec<String>,
    /// Set by `monitor` before it reads the replay, so no live event falls between the two.
    pub subscription: Option<broadcast::Receiver<Event>>,
    /// Times of `enroll:request`s on this connection (at most 5 an hour, §1.5).
    pub enroll_requests: Vec<i64>,
    pub conn: Arc<ConnEntry>,
    /// The client certificate chain, when one was presented (peers, §6.5).
    pub peer_certs: Option<Vec<rustls_pki_types::CertificateDer<'static>>>,
}

impl Session {
    pub fn new(shared: Arc<Shared>, peer_addr: SocketAddr, conn: Arc<ConnEntry>) -> Self {
        Session {
            shared,
            peer_addr,
            session_id: format!("_{}", uuid::Uuid::new_v4()),
            auth: Auth::Anonymous,
            challenge: None,
            json_errors: false,
            auth_failures: 0,
            monitor: None,
            pending_lines: Vec::new(),
            subscription: None,
            enroll_requests: Vec::new(),
            conn,
            peer_certs: None,
        }
    }

    pub fn atsign(&self) -> &str {
        &self.shared.config.atsign
    }

    pub fn is_owner(&self) -> bool {
        matches!(self.auth, Auth::Owner { .. })
    }

    pub fn enrollment(&self) -> Option<&Enrollment> {
        match &self.auth {
            Auth::Owner { enrollment, .. } => enrollment.as_ref(),
            _ => None,
        }
    }

    pub fn set_auth(&mut self, auth: Auth) {
        let kind = match &auth {
            Auth::Anonymous => ConnKind::Anonymous,
            Auth::Owner { .. } => ConnKind::Owner,
            Auth::Peer(_) => ConnKind::Peer,
        };
        if let Ok(mut e) = self.conn.enrollment.lock() {
            *e = match &auth {
                Auth::Owner {
                    enrollment: Some(en),
                    ..
                } => Some(en.id.clone()),
                _ => None,
            };
        }
        self.conn.set_kind(kind);
        self.auth = auth;
    }

    fn prompt(&self) -> Prompt {
        let parse = |a: &str| at_protocol::AtSign::parse(a).ok();
        match &self.auth {
            Auth::Anonymous => Prompt::Unauthenticated,
            Auth::Owner { .. } => {
                parse(self.atsign()).map_or(Prompt::Unauthenticated, Prompt::Owner)
            }
            Auth::Peer(p) => parse(p).map_or(Prompt::Unauthenticated, Prompt::Peer),
        }
    }

    /// Namespace authorisation of APKAM connections (§6.4); other owner connections pass.
    pub fn authorize(&self, key: &str, access: Access) -> Result<(), AtError> {
        let Some(en) = self.enrollment() else {
            return Ok(());
        };
        let reserved = AtKey::parse(key)
            .is_ok_and(|k| matches!(k.kind(), KeyKind::PrivateKey | KeyKind::Reserved));
        if reserved || is_reserved_owner_key(key, self.atsign()) {
            return Ok(());
        }
        if key.contains(".__manage@") {
            return Err(AtError::unauthorized(format!(
                "Enrollment {} may not access {key}",
                en.id
            )));
        }
        if namespace_access(&en.namespaces, key)
            .is_some_and(|a| access == Access::Read || a == "rw")
        {
            return Ok(());
        }
        Err(AtError::unauthorized(format!(
            "Enrollment id: {} is not authorized for {} access on key {key}",
            en.id,
            if access == Access::Read {
                "read"
            } else {
                "write"
            }
        )))
    }

    /// Whether an APKAM connection may see `key` at all (scan/sync filter).
    pub fn may_see(&self, key: &str) -> bool {
        let Some(en) = self.enrollment() else {
            return true;
        };
        if key.starts_with("public:") || is_reserved_owner_key(key, self.atsign()) {
            return true;
        }
        !key.contains(".__manage@") && namespace_access(&en.namespaces, key).is_some()
    }
}

/// Keys such as `public:publickey@me` or `shared_key.x@me` that every enrollment may use.
fn is_reserved_owner_key(key: &str, me: &str) -> bool {
    let Ok(parsed) = AtKey::parse(key) else {
        return false;
    };
    let entity = parsed.name();
    entity == "publickey"
        || entity == "signing_publickey"
        || entity.starts_with("shared_key")
        || key == format!("@{}:signing_privatekey{me}", me.trim_start_matches('@'))
}

/// The access an enrollment grants on `key`: its namespace entry, else `*`.
pub fn namespace_access<'a>(
    namespaces: &'a BTreeMap<String, String>,
    key: &str,
) -> Option<&'a str> {
    let entity = AtKey::parse(key)
        .map(|k| k.name().to_string())
        .unwrap_or_default();
    let dotted = format!(".{entity}");
    for (ns, access) in namespaces {
        if ns != "*" && dotted.ends_with(&format!(".{ns}")) && ns != "__manage" {
            return Some(access.as_str());
        }
    }
    namespaces.get("*").map(String::as_str)
}

async fn next_event(rx: &mut Option<broadcast::Receiver<Event>>) -> Option<Event> {
    match rx {
        Some(r) => loop {
            match r.recv().await {
                Ok(ev) => return Some(ev),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "monitor connection lagged behind");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        },
        None => std::future::pending().await,
    }
}

/// The monitor line for `event`, if this connection's monitor wants it.
fn monitor_line(session: &Session, event: &Event) -> Option<String> {
    let spec = session.monitor.as_ref()?;
    match event {
        Event::Stats {
            last_commit_id,
            operation,
        } => {
            let now = session.shared.clock.now_millis();
            Some(
                stats_notification(session.atsign(), *last_commit_id, *operation, now)
                    .to_monitor_line(),
            )
        }
        Event::Notification(n) => {
            let wanted_kind =
                n.kind == Kind::Received || (n.kind == Kind::SelfKind && spec.self_notifications);
            let from = n.from.trim_start_matches('@');
            let matches = spec.regex.is_match(&n.key) || spec.regex.is_match(from);
            let allowed =
                session.enrollment().is_none() || session.authorize(&n.key, Access::Read).is_ok();
            (wanted_kind && matches && allowed).then(|| n.to_json(false).to_monitor_line())
        }
    }
}

/// Serves one connection until it closes, is reaped or the server shuts down.
pub async fn run<S>(mut session: Session, stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (rd, mut wr) = tokio::io::split(stream);
    // 1 KiB to start (tokio-util's default is 8 KiB): most lines are short, and it grows on demand
    // for the long ones; idle connections (monitors) are the many.
    let mut frames = FramedRead::with_capacity(
        rd,
        LineCodec::new(session.shared.config.limits.max_line_len),
        1024,
    );
    let mut events: Option<broadcast::Receiver<Event>> = None;
    let cancel = session.conn.cancel.clone();
    if wr.write_all(b"@").await.is_err() || wr.flush().await.is_err() {
        return;
    }
    loop {
        let out: Option<String>;
        let mut close = false;
        tokio::select! {
            _ = cancel.cancelled() => break,
            frame = frames.next() => {
                let Some(Ok(frame)) = frame else { break };
                session.conn.touch(session.shared.clock.now_millis());
                let reply = match frame {
                    Line::TooLong => Reply::Error(AtError::new(ErrorCode::BufferOverflow, "Buffer limit exceeded").closing()),
                    Line::InvalidUtf8 => Reply::Error(AtError::syntax("command is not valid UTF-8")),
                    Line::Text(text) => commands::execute(&mut session, &text).await,
                };
                if matches!(reply, Reply::Close) {
                    break;
                }
                close = matches!(&reply, Reply::Error(e) if e.should_close());
                let prompt = if close && matches!(&reply, Reply::Error(e) if e.code == ErrorCode::BufferOverflow) {
                    None
                } else if session.monitor.is_some() && matches!(reply, Reply::Data(ref d) if d == "ok") {
                    // atsdk's monitor wants complete lines only (atsdk.md §7).
                    None
                } else {
                    Some(session.prompt())
                };
                out = render(&reply, prompt.as_ref(), session.is_owner(), session.json_errors);
                if let Some(sub) = session.subscription.take() {
                    events = Some(sub);
                }
            }
            ev = next_event(&mut events) => {
                let Some(ev) = ev else { break };
                out = monitor_line(&session, &ev);
            }
        }
        let mut buf = out.unwrap_or_default();
        for line in session.pending_lines.drain(..) {
            buf.push_str(&line);
        }
        if !buf.is_empty()
            && (wr.write_all(buf.as_bytes()).await.is_err() || wr.flush().await.is_err())
        {
            break;
        }
        if close {
            break;
        }
    }
    let _ = wr.shutdown().await;
}
