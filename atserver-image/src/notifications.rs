//! Notification records (atprotocol.md §8) and the in-process hub that feeds monitor connections.

use std::collections::BTreeMap;

use at_protocol::notification::{
    NotificationJson, NotificationMessageType, NotificationMetadata, NotificationOperation,
};
use at_protocol::time::format_dart_millis;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::metadata::Metadata;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Sent,
    Received,
    #[serde(rename = "self")]
    SelfKind,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Sent => "sent",
            Kind::Received => "received",
            Kind::SelfKind => "self",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Queued,
    Delivered,
    Errored,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Delivered => "delivered",
            Status::Errored => "errored",
            Status::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Update,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    Key,
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low = 1,
    Medium = 2,
    High = 3,
}

impl Priority {
    /// A command's `priority:` (low when absent).
    pub fn from_wire(p: Option<at_protocol::command::Priority>) -> Self {
        match p {
            Some(at_protocol::command::Priority::High) => Priority::High,
            Some(at_protocol::command::Priority::Medium) => Priority::Medium,
            _ => Priority::Low,
        }
    }
}

/// One stored notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    pub from: String,
    pub to: String,
    pub key: String,
    pub value: Option<String>,
    pub operation: Operation,
    pub message_type: MessageType,
    pub kind: Kind,
    pub status: Status,
    pub priority: Priority,
    pub strategy: String,
    pub latest_n: i64,
    pub notifier: String,
    pub retry_count: i64,
    pub created_at: i64,
    pub ttl: i64,
    pub expires_at: i64,
    pub is_encrypted: bool,
    pub metadata: Option<Metadata>,
}

impl Notification {
    /// A notification of `key` from `from` to `to`, created at `now` and living `ttl` ms, with
    /// the defaults every producer starts from: a new id, an update of a key without a value,
    /// low priority, strategy `all`, notifier `SYSTEM`, not encrypted, no metadata; a sent one
    /// is queued for delivery, a received or self one is delivered. Callers override the rest
    /// with struct update syntax.
    pub fn new(kind: Kind, from: &str, to: &str, key: String, now: i64, ttl: i64) -> Self {
        Notification {
            id: uuid::Uuid::new_v4().to_string(),
            from: from.to_string(),
            to: to.to_string(),
            key,
            value: None,
            operation: Operation::Update,
            message_type: MessageType::Key,
            kind,
            status: match kind {
                Kind::Sent => Status::Queued,
                Kind::Received | Kind::SelfKind => Status::Delivered,
            },
            priority: Priority::Low,
            strategy: "all".into(),
            latest_n: 1,
            notifier: "SYSTEM".into(),
            retry_count: 0,
            created_at: now,
            ttl,
            expires_at: now + ttl,
            is_encrypted: false,
            metadata: None,
        }
    }

    /// The notification JSON of §8.5. Live pushes carry the encryption members; replays and
    /// `notify:list` (`listed`) also carry `availableAt`/`expiresAt` strings.
    pub fn to_json(&self, listed: bool) -> NotificationJson {
        let metadata = self.metadata.as_ref().map(|m| {
            let field = |name: &str| m.strings.get(name).cloned();
            let mut other = BTreeMap::new();
            for (name, v) in [("ttl", m.ttl), ("ttb", m.ttb), ("ttr", m.ttr)] {
                if let Some(v) = v {
                    other.insert(name.to_string(), Value::from(v));
                }
            }
            if let Some(ccd) = m.ccd {
                other.insert("ccd".into(), Value::from(ccd));
            }
            for name in ["dataSignature", "pubKeyCS", "encoding", "appMetadata"] {
                if let Some(v) = field(name) {
                    other.insert(name.into(), Value::from(v));
                }
            }
            other.insert("isEncrypted".into(), Value::from(m.is_encrypted));
            if listed {
                let available = m
                    .available_at
                    .and_then(format_dart_millis)
                    .unwrap_or_else(|| "null".into());
                other.insert("availableAt".into(), Value::from(available));
                other.insert(
                    "expiresAt".into(),
                    Value::from(format_dart_millis(self.expires_at)),
                );
            }
            NotificationMetadata {
                enc_key_name: field("encKeyName"),
                enc_algo: field("encAlgo"),
                iv_nonce: field("ivNonce"),
                ske_enc_key_name: field("skeEncKeyName"),
                ske_enc_algo: field("skeEncAlgo"),
                shared_key_enc: field("sharedKeyEnc"),
                other,
            }
        });
        NotificationJson {
            id: self.id.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
            operation: match self.operation {
                Operation::Update => NotificationOperation::Update,
                Operation::Delete => NotificationOperation::Delete,
            },
            epoch_millis: self.created_at,
            message_type: match self.message_type {
                MessageType::Key => NotificationMessageType::Key,
                MessageType::Text => NotificationMessageType::Text,
            },
            is_encrypted: self.is_encrypted,
            metadata,
        }
    }

    /// The `notify:fetch` JSON: every non-string value stringified the Dart way.
    pub fn to_fetch_json(&self) -> Value {
        let priority = match self.priority {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
        };
        let kind = match self.kind {
            Kind::Sent => "sent",
            Kind::Received => "received",
            Kind::SelfKind => "self",
        };
        let message_type = match self.message_type {
            MessageType::Key => "key",
            MessageType::Text => "text",
        };
        json!({
            "id": self.id,
            "fromAtSign": self.from,
            "toAtSign": self.to,
            "notification": self.key,
            "notificationDateTime": format_dart_millis(self.created_at),
            "type": format!("NotificationType.{kind}"),
            "opType": format!("OperationType.{}", self.operation.as_str()),
            "messageType": format!("MessageType.{message_type}"),
            "priority": format!("NotificationPriority.{priority}"),
            "notificationStatus": format!("NotificationStatus.{}", self.status.as_str()),
            "retryCount": self.retry_count.to_string(),
            "strategy": self.strategy,
            "notifier": self.notifier,
            "depth": self.latest_n.to_string(),
            "atValue": self.value,
            "atMetadata": self.metadata.as_ref().map(Metadata::to_lookup_json),
            "ttl": self.ttl.to_string(),
            "expiresAt": format_dart_millis(self.expires_at),
        })
    }
}

/// Events pushed to monitor connections.
#[derive(Debug, Clone)]
pub enum Event {
    Notification(Box<Notification>),
    /// A change to the commit log: stats notification with the latest commit id.
    Stats {
        last_commit_id: Option<i64>,
        operation: Operation,
    },
}

/// Fan-out of live events to every monitor connection.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Event>,
}

impl Hub {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        Hub { tx }
    }
    pub fn publish(&self, event: Event) {
        // No receivers is the normal case when nobody monitors.
        let _ = self.tx.send(event);
    }
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

/// The stats notification (§8.4): the latest commit id, `"null"` while the log is empty.
pub fn stats_notification(
    atsign: &str,
    last_commit_id: Option<i64>,
    op: Operation,
    now: i64,
) -> NotificationJson {
    let operation = match op {
        Operation::Update => NotificationOperation::Update,
        Operation::Delete => NotificationOperation::Delete,
    };
    let mut n = NotificationJson::stats(atsign, last_commit_id.unwrap_or(-1), operation, now);
    if last_commit_id.is_none() {
        n.value = Some("null".into());
    }
    n
}
