//! `monitor[:strict][:selfNotifications][:multiplexed][:<epochMillis>][ <regex>]` (§3.6, §8.4).

use crate::commands::strip_verb;
use crate::error::AtError;
use crate::notifications::Kind;
use crate::reply::{CmdResult, Reply};
use crate::session::{Access, MonitorSpec, Session};

pub async fn monitor(s: &mut Session, cmd: &str) -> CmdResult {
    let rest = strip_verb(cmd, "monitor").ok_or_else(|| AtError::syntax("invalid monitor"))?;
    let (flags, pattern) = match rest.split_once(' ') {
        Some((f, p)) => (f, Some(p.trim())),
        None => (rest, None),
    };
    let mut self_notifications = false;
    let mut since: i64 = i64::MAX; // no replay unless epochMillis given
    let mut order = 0;
    for flag in flags.split(':').skip(1) {
        let lower = flag.to_ascii_lowercase();
        let rank = match lower.as_str() {
            "strict" => 1,
            "selfnotifications" => 2,
            "multiplexed" => 3,
            n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => 4,
            _ => return Err(AtError::syntax("invalid monitor flag")),
        };
        if rank <= order {
            return Err(AtError::syntax("monitor flags out of order"));
        }
        order = rank;
        match rank {
            2 => self_notifications = true,
            4 => {
                since = lower
                    .parse()
                    .map_err(|_| AtError::syntax("invalid epochMillis"))?
            }
            _ => {}
        }
    }
    if !flags.is_empty() && !flags.starts_with(':') {
        return Err(AtError::syntax("invalid monitor"));
    }
    let pattern = pattern.filter(|p| !p.is_empty()).unwrap_or(".*");
    let regex = regex::Regex::new(pattern).map_err(|_| AtError::syntax("invalid regex"))?;
    s.monitor = Some(MonitorSpec {
        regex: regex.clone(),
        self_notifications,
    });
    s.subscription = Some(s.shared.hub.subscribe());
    if since != i64::MAX {
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
                s.pending_lines
                    .push(format!("notification: {}\n", n.to_list_json()));
            }
        }
    }
    Ok(Reply::Silent)
}
