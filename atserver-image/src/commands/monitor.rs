//! `monitor[:strict][:selfNotifications][:multiplexed][:<epochMillis>][ <regex>]` (§3.6, §8.4).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use at_protocol::command::MonitorParams;
use regex::Regex;

use crate::error::AtError;
use crate::notifications::Kind;
use crate::reply::{CmdResult, Reply};
use crate::session::{Access, MonitorSpec, Session};

pub async fn monitor(s: &mut Session, p: MonitorParams) -> CmdResult {
    let self_notifications = p.self_notifications;
    let pattern = p
        .regex
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or(".*");
    let regex = compiled(pattern)?;
    s.monitor = Some(MonitorSpec {
        regex: Arc::clone(&regex),
        self_notifications,
    });
    s.subscription = Some(s.shared.hub.subscribe());
    if let Some(since) = p.epoch_millis {
        let since = i64::try_from(since).unwrap_or(i64::MAX);
        let kinds: Vec<Kind> = if self_notifications {
            vec![Kind::Received, Kind::SelfKind]
        } else {
            vec![Kind::Received]
        };
        let now = s.shared.clock.now_millis();
        let replay = s
            .shared
            .store
            .call(move |db| db.notifications_since(&kinds, since, now))
            .await?;
        for n in replay {
            let from = n.from.trim_start_matches('@');
            let allowed = s.enrollment().is_none() || s.authorize(&n.key, Access::Read).is_ok();
            if allowed && (regex.is_match(&n.key) || regex.is_match(from)) {
                s.pending_lines.push(n.to_json(true).to_monitor_line());
            }
        }
    }
    Ok(Reply::Silent)
}

/// Distinct monitor patterns kept compiled; beyond this, new patterns are compiled per call.
const CACHED_PATTERNS: usize = 64;

/// The compiled `pattern`, shared between monitors: most use the default or an app's fixed
/// pattern, and a compiled regex costs ~13 KB. Shared behind an `Arc`, not cloned: a `Regex`
/// clone shares the program but allocates its own pool of match caches at once (about 1.5 KB,
/// held for the monitor's life, 1.5 MB over 1,000 monitors) and a match cache of its own at its
/// first match; one shared pool keeps a cache per thread that matches.
fn compiled(pattern: &str) -> Result<Arc<Regex>, AtError> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let lock = || cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = lock().get(pattern) {
        return Ok(Arc::clone(r));
    }
    let regex = Arc::new(super::pattern::compile(pattern)?);
    let mut map = lock();
    if map.len() < CACHED_PATTERNS {
        map.insert(pattern.to_string(), Arc::clone(&regex));
    }
    Ok(regex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_compiled_once_and_invalid_ones_refused() {
        let a = compiled(".*wavi").unwrap();
        let b = compiled(".*wavi").unwrap();
        assert!(a.is_match("phone.wavi") && b.is_match("x.wavi") && !b.is_match("x.buzz"));
        assert!(Arc::ptr_eq(&a, &b), "the second monitor got its own copy");
        assert!(compiled("(unclosed").is_err());
    }
}
