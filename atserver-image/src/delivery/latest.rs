//! The `latest` notification strategy (`notify:…:strategy:latest:notifier:<n>:latestN:<N>`):
//! of the notifications queued for one recipient by one notifier, only the newest N still go;
//! the older ones are superseded before delivery, as the reference's `latest` queue intends
//! (its trimming loop is broken, atprotocol.md §15.11; this one keeps exactly N).
//!
//! `all` notifications (the default) are never touched, and a notifier's `latest` and `all`
//! notifications are independent. N is the `latestN` of the newest notification of the group
//! (at least 1), so a sender can change it from one notification to the next.

use std::collections::HashMap;

use crate::context::Shared;
use crate::notifications::{Notification, Status};

/// Whether `n` uses the `latest` strategy.
fn is_latest(n: &Notification) -> bool {
    n.strategy.eq_ignore_ascii_case("latest")
}

/// Removes from `queue` (one recipient's queued notifications, oldest first as the store lists
/// them) those superseded by newer ones of the same notifier, and returns them.
pub fn supersede(queue: &mut Vec<Notification>) -> Vec<Notification> {
    // Newest first within each notifier: by creation time, then by queue position (two
    // notifications of the same millisecond keep the order they were stored in).
    let mut groups: HashMap<&str, Vec<(i64, usize, &str, i64)>> = HashMap::new();
    for (pos, n) in queue.iter().enumerate().filter(|(_, n)| is_latest(n)) {
        groups.entry(n.notifier.as_str()).or_default().push((
            n.created_at,
            pos,
            n.id.as_str(),
            n.latest_n,
        ));
    }
    let mut dropped_ids: Vec<String> = Vec::new();
    for members in groups.values_mut() {
        members.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
        let newest_n = members.first().map_or(1, |m| m.3).max(1);
        let keep = usize::try_from(newest_n).unwrap_or(usize::MAX);
        dropped_ids.extend(members.iter().skip(keep).map(|m| m.2.to_string()));
    }
    if dropped_ids.is_empty() {
        return Vec::new();
    }
    let (dropped, kept): (Vec<_>, Vec<_>) = std::mem::take(queue)
        .into_iter()
        .partition(|n| dropped_ids.contains(&n.id));
    *queue = kept;
    dropped
}

/// Trims `queue` with [`supersede`] and records the superseded notifications as `expired`
/// (`notify:status` says so; they are never delivered). Called only where no delivery task
/// holds the recipient's queue, so no attempt's outcome overwrites the status.
pub async fn trim(shared: &Shared, queue: &mut Vec<Notification>) {
    let dropped = supersede(queue);
    if dropped.is_empty() {
        return;
    }
    let ids: Vec<String> = dropped.into_iter().map(|n| n.id).collect();
    let stored = shared
        .store
        .call(move |db| {
            ids.iter()
                .try_for_each(|id| db.set_notification_status(id, Status::Expired))
        })
        .await;
    if let Err(e) = stored {
        tracing::warn!(error = %e, "recording superseded notifications failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifications::Kind;

    fn n(id: &str, at: i64, strategy: &str, notifier: &str, latest_n: i64) -> Notification {
        Notification {
            id: id.into(),
            strategy: strategy.into(),
            latest_n,
            notifier: notifier.into(),
            ..Notification::new(
                Kind::Sent,
                "@alice",
                "@bob",
                format!("@bob:{id}.wavi@alice"),
                at,
                1000,
            )
        }
    }

    fn ids(list: &[Notification]) -> Vec<&str> {
        let mut v: Vec<&str> = list.iter().map(|n| n.id.as_str()).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn keeps_the_newest_n_per_notifier_and_leaves_all_alone() {
        let mut q = vec![
            n("a1", 1, "latest", "gps", 2),
            n("a2", 2, "latest", "gps", 2),
            n("a3", 3, "latest", "gps", 2),
            n("b1", 1, "latest", "chat", 1),
            n("b2", 2, "latest", "chat", 1),
            n("c1", 0, "all", "gps", 1),
            n("c2", 0, "all", "SYSTEM", 1),
        ];
        let dropped = supersede(&mut q);
        assert_eq!(ids(&dropped), ["a1", "b1"]);
        assert_eq!(ids(&q), ["a2", "a3", "b2", "c1", "c2"]);
        assert!(supersede(&mut q).is_empty());
    }

    #[test]
    fn same_millisecond_keeps_queue_order() {
        let mut q = vec![
            n("first", 5, "latest", "gps", 1),
            n("second", 5, "latest", "gps", 1),
        ];
        assert_eq!(ids(&supersede(&mut q)), ["first"]);
        assert_eq!(ids(&q), ["second"]);
    }

    #[test]
    fn the_newest_latest_n_decides_and_zero_means_one() {
        let mut q = vec![
            n("x1", 1, "latest", "gps", 5),
            n("x2", 2, "latest", "gps", 5),
            n("x3", 3, "latest", "gps", 0),
        ];
        assert_eq!(ids(&supersede(&mut q)), ["x1", "x2"]);
        assert_eq!(ids(&q), ["x3"]);
    }
}
