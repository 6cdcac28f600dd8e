//! `notify`, `notify:list|status|fetch|remove|all` (atprotocol.md §3.6, §8) for the owner.

use serde_json::Value;

use crate::commands::strip_verb;
use crate::commands::write;
use crate::error::{AtError, ErrorCode};
use crate::metadata::{self, MetaUpdate, Metadata};
use crate::notifications::{Kind, MessageType, Notification, Operation, Priority, Status};
use crate::reply::{CmdResult, Reply};
use crate::session::{Access, Session};

/// A parsed `notify:` command.
#[derive(Debug, Default)]
pub struct NotifyArgs {
    pub id: Option<String>,
    pub operation: Option<Operation>,
    pub message_type: Option<MessageType>,
    pub priority: Option<Priority>,
    pub strategy: Option<String>,
    pub latest_n: Option<i64>,
    pub notifier: Option<String>,
    pub ttln: Option<i64>,
    pub meta: MetaUpdate,
    /// `@bob` or `public`
    pub recipient: String,
    pub key: String,
    pub owner: Option<String>,
    pub value: Option<String>,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
}

pub fn parse(cmd: &str) -> Result<NotifyArgs, AtError> {
    let rest = strip_verb(cmd, "notify:").ok_or_else(|| AtError::syntax("invalid notify"))?;
    let tokens: Vec<&str> = rest.split(':').collect();
    let mut a = NotifyArgs::default();
    let mut i = 0;
    let bad = |what: &str| AtError::syntax(format!("invalid {what} in notify"));
    while i < tokens.len() {
        let t = tokens[i];
        let next = tokens.get(i + 1).copied();
        match t.to_ascii_lowercase().as_str() {
            "id" if a.id.is_none() => {
                let v = next.filter(|v| valid_id(v)).ok_or_else(|| bad("id"))?;
                a.id = Some(v.to_string());
                i += 2;
            }
            "update" | "delete" if a.operation.is_none() => {
                a.operation = Some(if t.eq_ignore_ascii_case("update") {
                    Operation::Update
                } else {
                    Operation::Delete
                });
                i += 1;
            }
            "messagetype" => {
                a.message_type = Some(match next.map(str::to_ascii_lowercase).as_deref() {
                    Some("key") => MessageType::Key,
                    Some("text") => MessageType::Text,
                    _ => return Err(bad("messageType")),
                });
                i += 2;
            }
            "priority" => {
                a.priority = Some(match next.map(str::to_ascii_lowercase).as_deref() {
                    Some("low") => Priority::Low,
                    Some("medium") => Priority::Medium,
                    Some("high") => Priority::High,
                    _ => return Err(bad("priority")),
                });
                i += 2;
            }
            "strategy" => {
                let v =
                    next.filter(|v| ["all", "latest"].contains(&v.to_ascii_lowercase().as_str()));
                a.strategy = Some(v.ok_or_else(|| bad("strategy"))?.to_ascii_lowercase());
                i += 2;
            }
            "latestn" => {
                a.latest_n = Some(
                    next.and_then(|v| v.parse().ok())
                        .ok_or_else(|| bad("latestN"))?,
                );
                i += 2;
            }
            "notifier" => {
                a.notifier = Some(
                    next.filter(|v| !v.is_empty())
                        .ok_or_else(|| bad("notifier"))?
                        .to_string(),
                );
                i += 2;
            }
            "ttln" => {
                a.ttln = Some(
                    next.and_then(|v| v.parse().ok())
                        .filter(|v: &i64| *v >= 0)
                        .ok_or_else(|| bad("ttln"))?,
                );
                i += 2;
            }
            _ => {
                let used = metadata::parse_leading(&tokens[i..], &mut a.meta)?;
                if used == 0 {
                    break;
                }
                i += used;
            }
        }
    }
    // Recipient scope, then `<atKey>[@owner][:value]`.
    let scope = tokens
        .get(i)
        .copied()
        .ok_or_else(|| AtError::syntax("notify needs a recipient"))?;
    if scope.eq_ignore_ascii_case("public") {
        a.recipient = "public".into();
    } else if let Some(r) = scope.strip_prefix('@').filter(|r| !r.is_empty()) {
        a.recipient = crate::atsign::normalize(r).map_err(|e| AtError::syntax(e.to_string()))?;
    } else {
        return Err(AtError::syntax("notify needs public or @recipient"));
    }
    let body = tokens[i + 1..].join(":");
    if body.is_empty() {
        return Err(AtError::syntax("notify needs a key"));
    }
    match body.find('@') {
        Some(at) if at > 0 => {
            a.key = body[..at].to_string();
            let after = &body[at..];
            let (owner, value) = match after.find(':') {
                Some(c) => (&after[..c], Some(&after[c + 1..])),
                None => (after, None),
            };
            a.owner =
                Some(crate::atsign::normalize(owner).map_err(|e| AtError::syntax(e.to_string()))?);
            a.value = value.filter(|v| !v.is_empty()).map(str::to_string);
        }
        _ => {
            // Text messages carry no owner: everything is the text.
            a.key = body;
        }
    }
    if a.strategy.as_deref() == Some("latest") && a.notifier.is_none() {
        return Err(AtError::syntax("strategy latest requires a notifier"));
    }
    Ok(a)
}

pub async fn notify(s: &mut Session, cmd: &str) -> CmdResult {
    if !s.is_owner() {
        return Err(AtError::unauthenticated(
            "Command cannot be executed without auth",
        ));
    }
    let a = parse(cmd)?;
    let me = s.atsign().to_string();
    if a.owner.as_ref().is_some_and(|o| *o != me) {
        return Err(AtError::unauthorized("cannot notify as another atSign"));
    }
    let message_type = a.message_type.unwrap_or(MessageType::Key);
    let key = match (message_type, a.recipient.as_str()) {
        (MessageType::Text, r) => format!("{r}:{}", a.key),
        (MessageType::Key, "public") => format!("public:{}{me}", a.key),
        (MessageType::Key, r) => format!("{r}:{}{me}", keys_lower(&a.key)),
    };
    if message_type == MessageType::Key {
        s.authorize(&key, Access::Write)?;
    }
    let now = s.shared.clock.now_millis();
    let ttl = a
        .ttln
        .filter(|t| *t > 0)
        .unwrap_or(s.shared.config.notification_ttl_ms);
    let mut meta = Metadata::new_record(&me, now);
    meta.apply(&a.meta, now, &me, false);
    let is_encrypted = match message_type {
        MessageType::Text => a.meta.is_encrypted.unwrap_or(false),
        MessageType::Key if a.recipient == "public" || a.key.starts_with("public") => false,
        MessageType::Key => a.meta.is_encrypted.unwrap_or(true),
    };
    let to_self = a.recipient == me;
    let id =
        a.id.clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let n = Notification {
        id: id.clone(),
        from: me.clone(),
        to: a.recipient.clone(),
        key,
        value: a.value,
        operation: a.operation.unwrap_or(Operation::Update),
        message_type,
        kind: if to_self { Kind::Received } else { Kind::Sent },
        status: if to_self {
            Status::Delivered
        } else {
            Status::Queued
        },
        priority: a.priority.unwrap_or(Priority::Low),
        strategy: a.strategy.unwrap_or_else(|| "all".into()),
        latest_n: a.latest_n.unwrap_or(1),
        notifier: a.notifier.unwrap_or_else(|| "SYSTEM".into()),
        retry_count: 0,
        created_at: now,
        ttl,
        expires_at: now + ttl,
        is_encrypted,
        metadata: Some(meta),
    };
    write::store_notification(&s.shared, n).await?;
    Ok(Reply::Data(id))
}

fn keys_lower(k: &str) -> String {
    k.to_lowercase()
}

/// Dates of `notify:list` (`YYYY-MM-DD`, inclusive, UTC).
fn parse_date(d: &str) -> Result<jiff::civil::Date, AtError> {
    let parts: Vec<&str> = d.split('-').collect();
    let num = |i: usize| parts.get(i).and_then(|p| p.parse::<i16>().ok());
    match (num(0), num(1), num(2)) {
        (Some(y), Some(m), Some(day)) => jiff::civil::Date::new(y, m as i8, day as i8)
            .map_err(|_| AtError::new(ErrorCode::AT0022, format!("invalid date {d}"))),
        _ => Err(AtError::new(ErrorCode::AT0022, format!("invalid date {d}"))),
    }
}

pub async fn list(s: &mut Session, cmd: &str) -> CmdResult {
    let rest =
        strip_verb(cmd, "notify:list").ok_or_else(|| AtError::syntax("invalid notify:list"))?;
    let mut from_date = None;
    let mut to_date = None;
    let mut pattern: Option<String> = None;
    let rest = rest.strip_prefix(':').unwrap_or(rest).trim();
    let looks_date = |p: &str| {
        p.len() >= 6 && p.as_bytes().first().is_some_and(u8::is_ascii_digit) && p.contains('-')
    };
    for part in rest.split(':').filter(|p| !p.is_empty()) {
        if pattern.is_none() && looks_date(part) && from_date.is_none() {
            from_date = Some(parse_date(part)?);
        } else if pattern.is_none() && looks_date(part) && to_date.is_none() {
            to_date = Some(parse_date(part)?);
        } else if pattern.is_none() {
            pattern = Some(part.to_string());
        } else {
            return Err(AtError::syntax("invalid notify:list"));
        }
    }
    // A bare `notify:list <regex>` form is also common.
    let pattern = pattern
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty());
    let regex = pattern
        .map(|p| regex::Regex::new(&p).map_err(|_| AtError::syntax("invalid regex")))
        .transpose()?;
    let now = s.shared.clock.now_millis();
    let all = s
        .shared
        .store
        .call(move |db| db.notifications_since(&[Kind::Received], i64::MIN, now))
        .await?;
    let items: Vec<Value> = all
        .into_iter()
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
        .map(|n| n.to_list_json())
        .collect();
    if items.is_empty() {
        return Ok(Reply::null());
    }
    Ok(Reply::Data(Value::Array(items).to_string()))
}

pub async fn status(s: &mut Session, cmd: &str) -> CmdResult {
    let id = strip_verb(cmd, "notify:status:").filter(|i| !i.is_empty() && !i.contains(' '));
    let id = id
        .ok_or_else(|| AtError::syntax("invalid notify:status"))?
        .to_string();
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

pub async fn fetch(s: &mut Session, cmd: &str) -> CmdResult {
    let id = strip_verb(cmd, "notify:fetch:").filter(|i| !i.is_empty() && !i.contains(' '));
    let id = id
        .ok_or_else(|| AtError::syntax("invalid notify:fetch"))?
        .to_string();
    let now = s.shared.clock.now_millis();
    let lookup_id = id.clone();
    let n = s
        .shared
        .store
        .call(move |db| db.get_notification(&lookup_id))
        .await?;
    Ok(Reply::Data(match n {
        Some(n) if n.expires_at > now => n.to_fetch_json().to_string(),
        _ => serde_json::json!({"id": id, "notificationStatus": "NotificationStatus.expired"})
            .to_string(),
    }))
}

pub async fn remove(s: &mut Session, cmd: &str) -> CmdResult {
    let id = strip_verb(cmd, "notify:remove:").filter(|i| valid_id(i));
    let id = id
        .ok_or_else(|| AtError::syntax("invalid notify:remove"))?
        .to_string();
    s.shared
        .store
        .call(move |db| db.remove_notification(&id))
        .await?;
    Ok(Reply::data("success"))
}

/// `notify:all:[op:][messageType:t:][ttl:][ttb:][ttr:][ccd:]@a,@b:<key>[@owner][:value]`.
pub async fn all(s: &mut Session, cmd: &str) -> CmdResult {
    let rest =
        strip_verb(cmd, "notify:all:").ok_or_else(|| AtError::syntax("invalid notify:all"))?;
    let tokens: Vec<&str> = rest.split(':').collect();
    let mut i = 0;
    let mut prefix = String::new();
    while let Some(t) = tokens.get(i) {
        let lower = t.to_ascii_lowercase();
        if lower == "update" || lower == "delete" {
            prefix.push_str(&format!("{lower}:"));
            i += 1;
        } else if ["messagetype", "ttl", "ttb", "ttr", "ccd"].contains(&lower.as_str()) {
            let v = tokens
                .get(i + 1)
                .ok_or_else(|| AtError::syntax("invalid notify:all"))?;
            prefix.push_str(&format!("{t}:{v}:"));
            i += 2;
        } else {
            break;
        }
    }
    let recipients = tokens
        .get(i)
        .ok_or_else(|| AtError::syntax("notify:all needs recipients"))?;
    let body = tokens[i + 1..].join(":");
    if body.is_empty() {
        return Err(AtError::syntax("notify:all needs a key"));
    }
    let mut ids = serde_json::Map::new();
    for r in recipients.split(',').filter(|r| !r.is_empty()) {
        let r = crate::atsign::normalize(r).map_err(|e| AtError::syntax(e.to_string()))?;
        let single = format!("notify:{prefix}{r}:{body}");
        match notify(s, &single).await? {
            Reply::Data(id) => {
                ids.insert(r, Value::String(id));
            }
            other => return Ok(other),
        }
    }
    Ok(Reply::DataSpaced(Value::Object(ids).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_atsdk_notify() {
        let a = parse(
            "notify:id:abc-1:update:isEncrypted:true:ivNonce:AAA=:@bob:k.app@alice:Y2lwaGVy:x",
        )
        .unwrap();
        assert_eq!(a.id.as_deref(), Some("abc-1"));
        assert_eq!(a.operation, Some(Operation::Update));
        assert_eq!(a.recipient, "@bob");
        assert_eq!(a.key, "k.app");
        assert_eq!(a.owner.as_deref(), Some("@alice"));
        assert_eq!(a.value.as_deref(), Some("Y2lwaGVy:x"));
        assert_eq!(a.meta.is_encrypted, Some(true));
    }

    #[test]
    fn parses_text_and_rejects_latest_without_notifier() {
        let a = parse("notify:messageType:text:@bob:hello").unwrap();
        assert_eq!(a.message_type, Some(MessageType::Text));
        assert_eq!(a.key, "hello");
        assert!(parse("notify:strategy:latest:@bob:k@alice").is_err());
        assert!(parse("notify:").is_err());
    }
}
