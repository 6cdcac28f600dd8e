//! `sync:from` (atprotocol.md §9).

use serde_json::{json, Value};

use crate::commands::strip_verb;
use crate::error::AtError;
use crate::keys;
use crate::reply::{CmdResult, Reply};
use crate::session::Session;

/// Page cap, as in the reference server, and the byte budget of one reply.
const PAGE_LIMIT: i64 = 25;
const BUFFER_BYTES: usize = 5 * 1024 * 1024;

struct SyncArgs {
    from: i64,
    limit: i64,
    skip_deletes_until: i64,
    regex: Option<regex::Regex>,
}

fn parse(cmd: &str) -> Result<SyncArgs, AtError> {
    let rest = strip_verb(cmd, "sync:from:").ok_or_else(|| AtError::syntax("invalid sync:from"))?;
    let (from, mut rest) = rest.split_once(':').unwrap_or((rest, ""));
    let from: i64 = from
        .parse()
        .map_err(|_| AtError::syntax("invalid commit id"))?;
    if from < -1 {
        return Err(AtError::syntax("invalid commit id"));
    }
    let mut args = SyncArgs {
        from,
        limit: PAGE_LIMIT,
        skip_deletes_until: -1,
        regex: None,
    };
    if let Some(r) = strip_verb(rest, "limit:") {
        let (n, r) = r.split_once(':').unwrap_or((r, ""));
        args.limit = n
            .parse::<i64>()
            .map_err(|_| AtError::syntax("invalid limit"))?
            .clamp(1, PAGE_LIMIT);
        rest = r;
    }
    if let Some(r) = strip_verb(rest, "skipDeletesUntil:") {
        let (n, r) = r.split_once(':').unwrap_or((r, ""));
        args.skip_deletes_until = n
            .parse()
            .map_err(|_| AtError::syntax("invalid skipDeletesUntil"))?;
        rest = r;
    }
    if !rest.is_empty() {
        args.regex = Some(regex::Regex::new(rest).map_err(|_| AtError::syntax("invalid regex"))?);
    }
    Ok(args)
}

/// Keys shipped whatever the regex (§9.2).
fn always_included(key: &str) -> bool {
    let entity = keys::entity_of(key);
    entity.starts_with("shared_key")
        || key.starts_with("public:publickey")
        || (key.starts_with("public:") && keys::namespace_of(key).is_none())
}

pub async fn sync_from(s: &mut Session, cmd: &str) -> CmdResult {
    let args = parse(cmd)?;
    let now = s.shared.clock.now_millis();
    let mut out: Vec<Value> = Vec::new();
    let mut bytes = 0usize;
    let mut cursor = args.from;
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
            let wanted = args.regex.as_ref().is_none_or(|r| r.is_match(&row.key))
                || always_included(&row.key);
            if !wanted || !s.may_see(&row.key) {
                continue;
            }
            let entry = if row.op == "-" {
                if row.id <= args.skip_deletes_until {
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
            if out.len() as i64 >= args.limit {
                break 'pages;
            }
        }
    }
    Ok(Reply::Data(Value::Array(out).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sync_forms() {
        let a = parse("sync:from:-1:limit:10").unwrap();
        assert_eq!((a.from, a.limit), (-1, 10));
        let a = parse("sync:from:5:limit:100:skipDeletesUntil:3:.*wavi").unwrap();
        assert_eq!((a.from, a.limit, a.skip_deletes_until), (5, PAGE_LIMIT, 3));
        assert!(a.regex.is_some());
        assert!(parse("sync:from:x").is_err());
        assert!(parse("sync:from:-2").is_err());
    }
}
