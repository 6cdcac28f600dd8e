//! `stats[:id,id…][:regex]` ids 1–15 (atprotocol.md §11).

use at_protocol::command::StatsParams;
use at_protocol::notification::{format_stats, StatEntry};
use at_protocol::time::format_dart_millis;
use serde_json::{json, Value};

use crate::error::AtError;
use crate::notifications::{Kind, MessageType, Operation, Status};
use crate::reply::{CmdResult, Reply};
use crate::session::Session;

const NAMES: [&str; 15] = [
    "activeInboundConnections",
    "activeOutboundConnections",
    "lastCommitID",
    "secondaryStorageSize",
    "topAtSigns",
    "topKeys",
    "secondaryServerVersion",
    "LastLoggedInDatetime",
    "diskSize",
    "LastPkam",
    "NotificationCount",
    "CommitLogCompactionStats",
    "AccessLogCompactionStats",
    "NotificationCompactionStats",
    "LatestCommitEntryOfEachKey",
];

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

pub async fn stats(s: &mut Session, p: StatsParams) -> CmdResult {
    let ids: Vec<usize> = if p.ids.is_empty() {
        (1..=NAMES.len()).collect()
    } else {
        p.ids
            .iter()
            .map(|i| {
                usize::try_from(*i)
                    .ok()
                    .filter(|n| (1..=NAMES.len()).contains(n))
            })
            .collect::<Option<_>>()
            .ok_or_else(|| AtError::syntax("unknown stats id"))?
    };
    let regex = super::pattern::compile_optional(p.regex.as_deref())?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let value = stat(s, id, regex.as_ref()).await?;
        out.push(StatEntry {
            id: id.to_string(),
            name: NAMES[id - 1].to_string(),
            value,
        });
    }
    Ok(Reply::DataSpaced(format_stats(&out)))
}

async fn stat(s: &Session, id: usize, regex: Option<&regex::Regex>) -> Result<Value, AtError> {
    let shared = &s.shared;
    Ok(match id {
        1 => Value::String(shared.registry.count().to_string()),
        2 => Value::String("0".into()),
        3 => {
            let re = regex.cloned();
            let visible = s.enrollment().cloned();
            let found = shared
                .store
                .call(move |db| {
                    let mut skip = 0;
                    loop {
                        let page = db.commits_desc(skip, 500)?;
                        if page.is_empty() {
                            return Ok(None);
                        }
                        skip += page.len() as i64;
                        if let Some(r) = page.iter().find(|r| {
                            re.as_ref().is_none_or(|re| re.is_match(&r.key))
                                && visible.as_ref().is_none_or(|en| {
                                    r.key.starts_with("public:")
                                        || crate::session::namespace_access(&en.namespaces, &r.key)
                                            .is_some()
                                })
                        }) {
                            return Ok(Some(r.id));
                        }
                    }
                })
                .await?;
            Value::String(found.map_or("null".into(), |id| id.to_string()))
        }
        4 => json!(shared.store.call(|db| db.size_bytes()).await?),
        5 | 6 => {
            let column = if id == 5 { "atsign" } else { "key" };
            let top = shared
                .store
                .call(move |db| db.top_access(column, 5))
                .await?;
            let m: serde_json::Map<String, Value> =
                top.into_iter().map(|(k, n)| (k, json!(n))).collect();
            Value::String(Value::Object(m).to_string())
        }
        7 => Value::String(crate::COMPAT_VERSION.into()),
        8 | 10 => {
            let verb = if id == 10 { Some("pkam") } else { None };
            let t = shared
                .store
                .call(move |db| db.last_access(verb.map(str::to_string).as_deref()))
                .await?;
            Value::String(
                t.and_then(format_dart_millis)
                    .unwrap_or_else(|| "Not Available".into()),
            )
        }
        9 => {
            let bytes = dir_size(&shared.config.data_dir) as f64;
            Value::String(
                json!({"size": format!("{:.2}", bytes / 1_048_576.0), "units": "MB"}).to_string(),
            )
        }
        11 => {
            let all = shared.store.call(|db| db.notification_counts()).await?;
            let count = |f: &dyn Fn(&crate::notifications::Notification) -> bool| {
                all.iter().filter(|n| f(n)).count()
            };
            Value::String(
                json!({
                    "total": all.len(),
                    "type": {"sent": count(&|n| n.kind == Kind::Sent), "received": count(&|n| n.kind == Kind::Received)},
                    "status": {"delivered": count(&|n| n.status == Status::Delivered),
                               "failed": count(&|n| n.status == Status::Errored),
                               "queued": count(&|n| n.status == Status::Queued)},
                    "operations": {"update": count(&|n| n.operation == Operation::Update),
                                   "delete": count(&|n| n.operation == Operation::Delete)},
                    "messageType": {"key": count(&|n| n.message_type == MessageType::Key),
                                    "text": count(&|n| n.message_type == MessageType::Text)},
                    "createdOn": shared.clock.now_millis(),
                })
                .to_string(),
            )
        }
        // SQLite keeps one commit entry per key and compacts itself; nothing to report.
        12..=14 => Value::String("{}".into()),
        _ => {
            let re = regex.cloned();
            let entries = shared
                .store
                .call(move |db| {
                    let mut m = serde_json::Map::new();
                    let mut skip = 0;
                    loop {
                        let page = db.commits_desc(skip, 1000)?;
                        if page.is_empty() {
                            return Ok(m);
                        }
                        skip += page.len() as i64;
                        for r in page {
                            if re.as_ref().is_none_or(|re| re.is_match(&r.key)) {
                                m.insert(r.key, json!([r.id, r.op]));
                            }
                        }
                    }
                })
                .await?;
            Value::String(Value::Object(entries).to_string())
        }
    })
}
