//! `sync:from` (atprotocol.md §9).

use serde_json::{json, Value};

use at_protocol::command::SyncFromParams;
use at_protocol::{AtKey, KeyKind};

use crate::reply::{CmdResult, Reply};
use crate::session::Session;

/// Page cap, as in the reference server, and the byte budget of one reply.
const PAGE_LIMIT: i64 = 25;
const BUFFER_BYTES: usize = 5 * 1024 * 1024;

/// Keys shipped whatever the regex (§9.2).
fn always_included(key: &str) -> bool {
    let Ok(parsed) = AtKey::parse(key) else {
        return false;
    };
    parsed.name().starts_with("shared_key")
        || key.starts_with("public:publickey")
        || (*parsed.kind() == KeyKind::Public && parsed.namespace().is_none())
}

pub async fn sync_from(s: &mut Session, p: SyncFromParams) -> CmdResult {
    let limit = p.limit.map_or(PAGE_LIMIT, |l| {
        i64::try_from(l).unwrap_or(PAGE_LIMIT).clamp(1, PAGE_LIMIT)
    });
    let skip_deletes_until = p
        .skip_deletes_until
        .map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
    let regex = super::pattern::compile_optional(p.regex.as_deref())?;
    let now = s.shared.clock.now_millis();
    let mut out: Vec<Value> = Vec::new();
    let mut bytes = 0usize;
    let mut cursor = p.from.max(-1);
    'pages: loop {
        let rows = s
            .shared
            .store
            .call(move |db| {
                let rows = db.commits_after(cursor, 200)?;
                let mut with_records = Vec::with_capacity(rows.len());
                for row in rows {
                    let rec = if row.op == "-" {
                        None
                    } else {
                        db.get(&row.key)?
                    };
                    with_records.push((row, rec));
                }
                Ok(with_records)
            })
            .await?;
        if rows.is_empty() {
            break;
        }
        for (row, rec) in rows {
            cursor = row.id;
            let wanted =
                regex.as_ref().is_none_or(|r| r.is_match(&row.key)) || always_included(&row.key);
            if !wanted || !s.may_see(&row.key) {
                continue;
            }
            let entry = if row.op == "-" {
                if row.id <= skip_deletes_until {
                    continue;
                }
                json!({"atKey": row.key, "value": null, "metadata": null, "commitId": row.id, "operation": "-"})
            } else {
                // An orphaned or expired entry is skipped rather than failing the whole sync.
                let Some(r) = rec.filter(|r| !r.meta.expired(now)) else {
                    continue;
                };
                json!({"atKey": row.key, "value": r.value, "metadata": r.meta.to_sync_json(),
                       "commitId": row.id, "operation": row.op})
            };
            let len = entry.to_string().len();
            if !out.is_empty() && bytes + len > BUFFER_BYTES {
                break 'pages;
            }
            bytes += len;
            out.push(entry);
            if out.len() as i64 >= limit {
                break 'pages;
            }
        }
    }
    Ok(Reply::Data(Value::Array(out).to_string()))
}
