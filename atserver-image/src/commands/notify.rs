//! `notify`, `notify:list|status|fetch|remove|all` (atprotocol.md §3.6, §8) for the owner.

use at_protocol::command::{
    MessageType as WireMessageType, NotifyAllParams, NotifyListParams, NotifyOp, NotifyParams,
    Strategy,
};
use serde_json::Value;

use crate::error::AtError;
use crate::keystore;
use crate::metadata::Metadata;
use crate::notifications::{Kind, MessageType, Notification, Operation, Priority, Status};
use crate::reply::{CmdResult, Reply};
use crate::session::{Access, Auth, Session};
use at_protocol::ErrorCode;

pub async fn notify(s: &mut Session, p: NotifyParams) -> CmdResult {
    if let Auth::Peer(peer) = &s.auth {
        let peer = peer.clone();
        return super::notify_receive::deliver(&s.shared, &peer, p).await;
    }
    if !s.is_owner() {
        return Err(AtError::unauthenticated(
            "Command cannot be executed without auth",
        ));
    }
    let me = s.atsign().to_string();
    if p.owner.as_ref().is_some_and(|o| o.as_str() != me) {
        return Err(AtError::unauthorized("cannot notify as another atSign"));
    }
    if p.strategy == Some(Strategy::Latest) && p.notifier.is_none() {
        return Err(AtError::syntax("strategy latest requires a notifier"));
    }
    let message_type = match p.message_type {
        Some(WireMessageType::Text) => MessageType::Text,
        _ => MessageType::Key,
    };
    let recipient =
        p.to.as_ref()
            .map_or_else(|| "public".to_string(), |t| t.as_str().to_string());
    let key = match (message_type, &p.to) {
        (MessageType::Text, _) => format!("{recipient}:{}", p.key),
        (MessageType::Key, None) => format!("public:{}{me}", p.key.to_lowercase()),
        (MessageType::Key, Some(_)) => format!("{recipient}:{}{me}", p.key.to_lowercase()),
    };
    if message_type == MessageType::Key {
        s.authorize(&key, Access::Write)?;
    }
    let update = &p.metadata;
    let now = s.shared.clock.now_millis();
    let ttl = p
        .ttln
        .and_then(|t| i64::try_from(t).ok())
        .filter(|t| *t > 0)
        .unwrap_or(s.shared.config.notification_ttl_ms);
    let mut meta = Metadata::new_record(&me, now);
    meta.apply(update, now, &me, false);
    let is_encrypted = match message_type {
        MessageType::Text => update.is_encrypted.unwrap_or(false),
        MessageType::Key if p.to.is_none() || p.key.starts_with("public") => false,
        MessageType::Key => update.is_encrypted.unwrap_or(true),
    };
    let kind = if recipient == me {
        Kind::Received
    } else {
        Kind::Sent
    };
    let fresh = Notification::new(kind, &me, &recipient, key, now, ttl);
    let id = p.id.clone().unwrap_or_else(|| fresh.id.clone());
    let n = Notification {
        id: id.clone(),
        value: p.value,
        operation: match p.operation {
            Some(NotifyOp::Delete) => Operation::Delete,
            _ => Operation::Update,
        },
        message_type,
        priority: Priority::from_wire(p.priority),
        strategy: if p.strategy == Some(Strategy::Latest) {
            "latest".into()
        } else {
            "all".into()
        },
        latest_n: p.latest_n.and_then(|n| i64::try_from(n).ok()).unwrap_or(1),
        notifier: p.notifier.unwrap_or(fresh.notifier.clone()),
        is_encrypted,
        metadata: Some(meta),
        ..fresh
    };
    keystore::notify::store_notification(&s.shared, n).await?;
    Ok(Reply::Data(id))
}

/// Dates of `notify:list` (`YYYY-MM-DD`, inclusive, UTC).
fn parse_date(d: &str) -> Result<jiff::civil::Date, AtError> {
    let parts: Vec<&str> = d.split('-').collect();
    let num = |i: usize| parts.get(i).and_then(|p| p.parse::<i16>().ok());
    match (num(0), num(1), num(2)) {
        (Some(y), Some(m), Some(day)) => jiff::civil::Date::new(y, m as i8, day as i8)
            .map_err(|_| AtError::new(ErrorCode::IllegalArguments, format!("invalid date {d}"))),
        _ => Err(AtError::new(
            ErrorCode::IllegalArguments,
            format!("invalid date {d}"),
        )),
    }
}

pub async fn list(s: &mut Session, p: NotifyListParams) -> CmdResult {
    let from_date = p.from_date.as_deref().map(parse_date).transpose()?;
    let to_date = p.to_date.as_deref().map(parse_date).transpose()?;
    let pattern = p.regex;
    // A bare `notify:list <regex>` form is also common.
    let pattern = pattern
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty());
    let regex = super::pattern::compile_optional(pattern.as_deref())?;
    let now = s.shared.clock.now_millis();
    // Owners list what they received; a peer lists what this atSign sent to it.
    let (kind, peer) = match &s.auth {
        Auth::Peer(peer) => (Kind::Sent, Some(peer.clone())),
        _ => (Kind::Received, None),
    };
    let all = s
        .shared
        .store
        .call(move |db| db.notifications_since(&[kind], i64::MIN, now))
        .await?;
    let items: Vec<Value> = all
        .into_iter()
        .filter(|n| peer.as_ref().is_none_or(|p| &n.to == p))
        .filter(|n| {
            let day = crate::util::day_of_millis(n.created_at);
            from_date.is_none_or(|f| day.is_some_and(|d| d >= f))
                && to_date.is_none_or(|t| day.is_some_and(|d| d <= t))
        })
        .filter(|n| {
            regex
                .as_ref()
                .is_none_or(|r| r.is_match(&n.key) || r.is_match(n.from.trim_start_matches('@')))
        })
        .filter(|n| {
            s.authorize(&n.key, Access::Read).is_ok() || n.message_type == MessageType::Text
        })
        .map(|n| serde_json::to_value(n.to_json(true)).unwrap_or(Value::Null))
        .collect();
    if items.is_empty() {
        return Ok(Reply::null());
    }
    Ok(Reply::Data(Value::Array(items).to_string()))
}

pub async fn status(s: &mut Session, id: &str) -> CmdResult {
    let id = id.to_string();
    let now = s.shared.clock.now_millis();
    let n = s
        .shared
        .store
        .call(move |db| db.get_notification(&id))
        .await?;
    Ok(Reply::Data(match n {
        None => "null".into(),
        Some(n) if n.expires_at <= now => Status::Expired.as_str().into(),
        Some(n) => n.status.as_str().into(),
    }))
}

pub async fn fetch(s: &mut Session, id: &str) -> CmdResult {
    let now = s.shared.clock.now_millis();
    let n = visible_notification(s, id).await?;
    Ok(Reply::Data(match n {
        Some(n) if n.expires_at > now => n.to_fetch_json().to_string(),
        _ => serde_json::json!({"id": id, "notificationStatus": "NotificationStatus.expired"})
            .to_string(),
    }))
}

pub async fn remove(s: &mut Session, id: &str) -> CmdResult {
    visible_notification(s, id).await?;
    let id = id.to_string();
    s.shared
        .store
        .call(move |db| db.remove_notification(&id))
        .await?;
    Ok(Reply::data("success"))
}

/// The notification `id` when there is one, refused (AT0009) when this connection may not see it.
async fn visible_notification(s: &Session, id: &str) -> Result<Option<Notification>, AtError> {
    let lookup_id = id.to_string();
    let n = s
        .shared
        .store
        .call(move |db| db.get_notification(&lookup_id))
        .await?;
    if let Some(n) = &n {
        visible(s, n)?;
    }
    Ok(n)
}

/// An enrollment sees only notifications about keys in its namespaces (and text messages), as
/// `notify:list` and `monitor` show them; fetching or removing one by id is held to the same rule.
fn visible(s: &Session, n: &Notification) -> Result<(), AtError> {
    if n.message_type == MessageType::Text || s.authorize(&n.key, Access::Read).is_ok() {
        return Ok(());
    }
    Err(AtError::unauthorized(
        "the notification is outside this enrollment's namespaces",
    ))
}

/// `notify:all`: one notification per recipient; reply `data: {"@bob":"<id>",…}`.
pub async fn all(s: &mut Session, p: NotifyAllParams) -> CmdResult {
    let mut metadata = at_protocol::Metadata {
        ttl: p.ttl.and_then(|v| i64::try_from(v).ok()),
        ttb: p.ttb.and_then(|v| i64::try_from(v).ok()),
        ttr: p.ttr,
        ..Default::default()
    };
    if metadata.ttr.is_some() {
        metadata.ccd = p.ccd;
    }
    let mut ids = serde_json::Map::new();
    for to in p.recipients {
        let single = NotifyParams {
            operation: p.operation,
            message_type: p.message_type,
            metadata: metadata.clone(),
            to: Some(to.clone()),
            key: p.key.clone(),
            owner: p.owner.clone(),
            value: p.value.clone(),
            ..Default::default()
        };
        match notify(s, single).await? {
            Reply::Data(id) => {
                ids.insert(to.as_str().to_string(), Value::String(id));
            }
            other => return Ok(other),
        }
    }
    Ok(Reply::DataSpaced(Value::Object(ids).to_string()))
}
