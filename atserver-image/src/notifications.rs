//! Notification records (atprotocol.md §8) and the in-process hub that feeds monitor connections.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::metadata::Metadata;
use crate::util::format_millis;

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
    fn message_type_str(&self) -> &'static str {
        match self.message_type {
            MessageType::Key => "MessageType.key",
            MessageType::Text => "MessageType.text",
        }
    }

    /// The live monitor JSON (§8.5).
    pub fn to_monitor_json(&self) -> Value {
        json!({
            "id": self.id,
            "from": self.from,
            "to": self.to,
            "key": self.key,
            "value": self.value,
            "operation": self.operation.as_str(),
            "epochMillis": self.created_at,
            "messageType": self.message_type_str(),
            "isEncrypted": self.is_encrypted,
            "metadata": self.metadata.as_ref().map(Metadata::to_notification_json),
        })
    }

    /// The replay / `notify:list` JSON: the monitor form plus availableAt/expiresAt strings.
    pub fn to_list_json(&self) -> Value {
        let mut v = self.to_monitor_json();
        let mut meta = match v.get("metadata") {
            Some(Value::Object(m)) => m.clone(),
            _ => serde_json::Map::new(),
        };
        let available = self.metadata.as_ref().and_then(|m| m.available_at);
        meta.insert(
            "availableAt".into(),
            available.map_or("null".into(), format_millis).into(),
        );
        meta.insert("expiresAt".into(), format_millis(self.expires_at).into());
        v["metadata"] = Value::Object(meta);
        v
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
            "notificationDateTime": format_millis(self.created_at),
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
            "expiresAt": format_millis(self.expires_at),
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

/// The stats notification JSON (§8.4).
pub fn stats_json(atsign: &str, last_commit_id: Option<i64>, op: Operation, now: i64) -> Value {
    json!({
        "id": "-1",
        "from": atsign,
        "to": atsign,
        "key": format!("statsNotification.{atsign}"),
        "value": last_commit_id.map_or("null".to_string(), |c| c.to_string()),
        "operation": op.as_str(),
        "epochMillis": now,
        "messageType": "MessageType.key",
        "isEncrypted": false,
        "metadata": null,
    })
}
