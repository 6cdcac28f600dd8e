//! Per-connection state: who is authenticated and how, the pending challenge, the monitor
//! subscription, and the namespace authorisation of APKAM connections. The loop that reads
//! lines and writes replies is in `connection.rs`.
//!
//! States: anonymous → owner (CRAM or PKAM, optionally bound to an APKAM enrollment), or
//! anonymous → peer (an atServer proven with `from:@peer` + `pol`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::broadcast;

use at_protocol::{AtKey, KeyKind, Prompt};

use crate::context::Shared;
use crate::error::AtError;
use crate::limits::{ConnEntry, ConnKind};
use crate::notifications::Event;

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
    /// Shared with every monitor on the same pattern (see `commands::monitor`).
    pub regex: Arc<regex::Regex>,
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
    /// This connection's end of a `stream:` transfer.
    pub stream: Option<crate::streams::Link>,
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
            stream: None,
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

    pub fn prompt(&self) -> Prompt {
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
        // Public data is readable by anyone anyway; the reference lets every enrollment read it.
        if access == Access::Read
            && (key.starts_with("public:") || key.starts_with("cached:public:"))
        {
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
