//! Notification JSON as pushed to monitors and listed by `notify:list` (§8.4, §8.5), and the
//! `stats` reply shape (§11).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `update` or `delete`, lower-case on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationOperation {
    Update,
    Delete,
}

/// The Dart enum strings `MessageType.key` / `MessageType.text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NotificationMessageType {
    #[serde(rename = "MessageType.key")]
    Key,
    #[serde(rename = "MessageType.text")]
    Text,
}

/// The `metadata` member. The six live-push members are always written (as `null` when
/// unset, like the reference); anything else (`availableAt`, `expiresAt`, `ttr`, `pubKeyCS`,
/// `appMetadata`…) goes through `other`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationMetadata {
    #[serde(default)]
    pub enc_key_name: Option<String>,
    #[serde(default)]
    pub enc_algo: Option<String>,
    #[serde(default)]
    pub iv_nonce: Option<String>,
    #[serde(default)]
    pub ske_enc_key_name: Option<String>,
    #[serde(default)]
    pub ske_enc_algo: Option<String>,
    #[serde(default)]
    pub shared_key_enc: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// One notification as JSON (monitor line payload and `notify:list` element).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationJson {
    pub id: String,
    pub from: String,
    pub to: String,
    /// e.g. `@bob:phone.wavi@alice`
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
    pub operation: NotificationOperation,
    /// When the receiving server stored it.
    pub epoch_millis: i64,
    pub message_type: NotificationMessageType,
    #[serde(default)]
    pub is_encrypted: bool,
    #[serde(default)]
    pub metadata: Option<NotificationMetadata>,
}

/// The id of stats notifications.
pub const STATS_NOTIFICATION_ID: &str = "-1";

/// A monitor line that is not `notification: {json}`.
#[derive(Debug, thiserror::Error)]
pub enum MonitorLineError {
    #[error("not a notification line")]
    NotANotification,
    #[error("invalid notification JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl NotificationJson {
    /// The periodic stats notification (§8.4): `value` is the latest commit id.
    pub fn stats(
        atsign: &str,
        latest_commit_id: i64,
        operation: NotificationOperation,
        epoch_millis: i64,
    ) -> NotificationJson {
        NotificationJson {
            id: STATS_NOTIFICATION_ID.to_string(),
            from: atsign.to_string(),
            to: atsign.to_string(),
            key: format!("statsNotification.{atsign}"),
            value: Some(latest_commit_id.to_string()),
            operation,
            epoch_millis,
            message_type: NotificationMessageType::Key,
            is_encrypted: false,
            metadata: None,
        }
    }

    pub fn is_stats(&self) -> bool {
        self.id == STATS_NOTIFICATION_ID
    }

    /// `notification: {json}\n` — no prompt follows on monitor connections.
    pub fn to_monitor_line(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string());
        format!("notification: {json}\n")
    }

    /// Parses a monitor line, with or without the space after `notification:` and the `\n`.
    pub fn parse_monitor_line(line: &str) -> Result<NotificationJson, MonitorLineError> {
        let body = line
            .trim()
            .strip_prefix("notification:")
            .ok_or(MonitorLineError::NotANotification)?;
        Ok(serde_json::from_str(body.trim_start())?)
    }
}

/// One `stats` entry: `{"id":"3","name":"lastCommitID","value":"42"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatEntry {
    pub id: String,
    pub name: String,
    pub value: Value,
}

/// The `stats` payload: `[<entry>, <entry>]` (joined with `", "` like the reference); send it
/// with [`crate::Response::DataSpaced`].
pub fn format_stats(entries: &[StatEntry]) -> String {
    let parts: Vec<String> = entries
        .iter()
        .map(|e| serde_json::to_string(e).unwrap_or_else(|_| "{}".to_string()))
        .collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn live_notification_shape() {
        let n = NotificationJson {
            id: "n1".into(),
            from: "@alice".into(),
            to: "@bob".into(),
            key: "@bob:phone.wavi@alice".into(),
            value: Some("CIPHER".into()),
            operation: NotificationOperation::Update,
            epoch_millis: 1729733702123,
            message_type: NotificationMessageType::Key,
            is_encrypted: true,
            metadata: Some(NotificationMetadata {
                iv_nonce: Some("IV".into()),
                shared_key_enc: Some("SKE".into()),
                ..Default::default()
            }),
        };
        let v: Value = serde_json::to_value(&n).unwrap();
        assert_eq!(
            v,
            json!({"id":"n1","from":"@alice","to":"@bob","key":"@bob:phone.wavi@alice",
                   "value":"CIPHER","operation":"update","epochMillis":1729733702123_i64,
                   "messageType":"MessageType.key","isEncrypted":true,
                   "metadata":{"encKeyName":null,"encAlgo":null,"ivNonce":"IV",
                               "skeEncKeyName":null,"skeEncAlgo":null,"sharedKeyEnc":"SKE"}})
        );
        let line = n.to_monitor_line();
        assert!(line.starts_with("notification: {") && line.ends_with("}\n"));
        assert_eq!(NotificationJson::parse_monitor_line(&line).unwrap(), n);
        let no_space = line.replacen("notification: ", "notification:", 1);
        assert_eq!(NotificationJson::parse_monitor_line(&no_space).unwrap(), n);
        assert!(NotificationJson::parse_monitor_line("data:ok").is_err());
    }

    #[test]
    fn replayed_metadata_and_stats() {
        let text = r#"{"id":"x","from":"@a","to":"@b","key":"@b:k@a","value":null,"operation":"delete","epochMillis":1,"messageType":"MessageType.text","isEncrypted":false,"metadata":{"availableAt":"null","expiresAt":"2024-10-24 01:35:02.123Z"}}"#;
        let n: NotificationJson = serde_json::from_str(text).unwrap();
        let meta = n.metadata.unwrap();
        assert_eq!(meta.other["expiresAt"], json!("2024-10-24 01:35:02.123Z"));
        assert_eq!(n.message_type, NotificationMessageType::Text);

        let s = NotificationJson::stats("@alice", 42, NotificationOperation::Update, 5);
        assert!(s.is_stats());
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"id":"-1","from":"@alice","to":"@alice","key":"statsNotification.@alice",
                   "value":"42","operation":"update","epochMillis":5,
                   "messageType":"MessageType.key","isEncrypted":false,"metadata":null})
        );
        let stats = format_stats(&[
            StatEntry {
                id: "3".into(),
                name: "lastCommitID".into(),
                value: json!("42"),
            },
            StatEntry {
                id: "1".into(),
                name: "activeInboundConnections".into(),
                value: json!("2"),
            },
        ]);
        assert_eq!(
            stats,
            r#"[{"id":"3","name":"lastCommitID","value":"42"}, {"id":"1","name":"activeInboundConnections","value":"2"}]"#
        );
    }
}
