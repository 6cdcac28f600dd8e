//! `monitor[:strict][:selfNotifications][:multiplexed][:<epochMillis>][ <regex>]` (§3.6, §8.4).

use at_protocol::command::MonitorParams;

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
    let regex = regex::Regex::new(pattern).map_err(|_| AtError::syntax("invalid regex"))?;
    s.monitor = Some(MonitorSpec {
        regex: regex.clone(),
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
