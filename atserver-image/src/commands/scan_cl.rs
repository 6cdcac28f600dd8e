//! `scan:cl[:showHidden:<bool>][:page:<n>][ <regex>]` (3.16.3): the commit log, one entry per
//! key (the latest), ascending by commit id, as `[{"atKey","operation","commitId","opTime"}]`.
//!
//! The commit log is the owner's sync state, so, like `sync:from`, only an owner connection may
//! read it, and an APKAM connection sees the entries of its namespaces. Hidden keys (`_…`) are
//! listed only with `showHidden:true`, as for `scan`. A page holds [`PAGE_SIZE`] entries;
//! `page:<n>` (from 0) selects one, without it every entry is listed.

use at_protocol::command::ScanParams;
use at_protocol::{AtKey, ScanVisibility};
use serde_json::{json, Value};

use crate::error::AtError;
use crate::reply::{CmdResult, Reply};
use crate::session::Session;

/// Entries per `page:<n>`.
pub const PAGE_SIZE: usize = 100;
/// Commit rows read from the store per call.
const BATCH: i64 = 500;

pub async fn scan_commit_log(s: &mut Session, p: ScanParams) -> CmdResult {
    if !s.is_owner() {
        return Err(AtError::unauthenticated(
            "scan:cl needs an owner connection",
        ));
    }
    if p.for_atsign
        .as_ref()
        .is_some_and(|a| a.as_str() != s.atsign())
    {
        return Err(AtError::syntax(
            "scan:cl lists this atSign's own commit log",
        ));
    }
    let regex = p
        .regex
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|_| AtError::syntax("invalid regex"))?;
    let show_hidden = p.show_hidden.unwrap_or(false);
    let (skip, take) = match p.page.map(|n| usize::try_from(n).unwrap_or(usize::MAX)) {
        Some(n) => (n.saturating_mul(PAGE_SIZE), PAGE_SIZE),
        None => (0, usize::MAX),
    };
    let mut out: Vec<Value> = Vec::new();
    let mut seen = 0usize;
    let mut cursor = -1i64;
    'rows: loop {
        let from = cursor;
        let rows = s
            .shared
            .store
            .call(move |db| db.commits_after(from, BATCH))
            .await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            cursor = row.id;
            let visible = AtKey::parse(&row.key).is_ok_and(|k| match k.scan_visibility() {
                ScanVisibility::Visible => true,
                ScanVisibility::Hidden => show_hidden,
                ScanVisibility::Never => false,
            });
            let wanted = regex.as_ref().is_none_or(|r| r.is_match(&row.key));
            if !visible || !wanted || !s.may_see(&row.key) {
                continue;
            }
            seen += 1;
            if seen <= skip {
                continue;
            }
            out.push(json!({
                "atKey": row.key,
                "operation": row.op,
                "commitId": row.id,
                "opTime": at_protocol::time::format_dart_millis(row.time),
            }));
            if out.len() >= take {
                break 'rows;
            }
        }
    }
    Ok(Reply::Data(Value::Array(out).to_string()))
}
