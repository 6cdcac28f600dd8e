//! The StatefulSet's rollout as the real controller reports it, and the recovery of a pod stuck
//! on a broken revision.
//!
//! Policy, chosen deliberately: `podManagementPolicy` stays `OrderedReady` (the default). With
//! one replica per StatefulSet it orders nothing, and the field is immutable, so changing it
//! would make every existing StatefulSet's apply fail. What it does not fix, neither would
//! `Parallel`: under `RollingUpdate` the controller replaces a pod only once it is healthy, so a
//! pod on a broken revision (crash-looping, never Ready) is never replaced by a fixed template.
//! The operator deletes such a pod itself ([`stuck`]); the controller then creates it on the
//! current revision. Under `OnDelete` the user asked to replace pods by hand: nothing is deleted.
//!
//! Progress is read from `updatedReplicas` (pods on the update revision), not from
//! `currentRevision`, which the controller never advances under `OnDelete`.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;

/// How long a pod on an old revision may stay not Ready before it is deleted: longer than a
/// healthy atServer takes to become Ready.
pub const STUCK_AFTER: SignedDuration = SignedDuration::from_secs(60);

/// (ready, rolling out) from the StatefulSet's status.
pub fn state(sts: &StatefulSet) -> (bool, bool) {
    let Some(status) = &sts.status else {
        return (false, false);
    };
    let observed_current = status.observed_generation >= sts.metadata.generation;
    let want = sts.spec.replicas.unwrap_or(1);
    let updated = want == 0 || status.updated_replicas.unwrap_or(0) >= want;
    let ready = observed_current && status.ready_replicas.unwrap_or(0) >= 1;
    (ready, !(observed_current && updated))
}

/// `pod` runs an older revision than `sts` wants and has not been Ready for [`STUCK_AFTER`]:
/// the controller will not replace it, so it must be deleted.
pub fn stuck(sts: &StatefulSet, pod: &Pod, now: Timestamp) -> bool {
    let Some(update) = sts.status.as_ref().and_then(|s| s.update_revision.as_ref()) else {
        return false;
    };
    let revision = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash"));
    if revision == Some(update) || pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    let since = match ready {
        Some(c) if c.status == "True" => return false,
        Some(c) => c.last_transition_time.as_ref().map(|t| t.0),
        None => pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
    };
    since.is_some_and(|t| now.duration_since(t) >= STUCK_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::StatefulSetStatus;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn sts(generation: i64, status: StatefulSetStatus) -> StatefulSet {
        let mut s = StatefulSet::default();
        s.metadata.generation = Some(generation);
        s.spec.replicas = Some(1);
        s.status = Some(status);
        s
    }

    #[test]
    fn progress_follows_updated_replicas_not_current_revision() {
        let mut s = StatefulSet::default();
        s.metadata.generation = Some(2);
        assert_eq!(state(&s), (false, false));
        let old = sts(
            2,
            StatefulSetStatus {
                observed_generation: Some(1),
                ready_replicas: Some(1),
                updated_replicas: Some(1),
                ..Default::default()
            },
        );
        assert_eq!(state(&old), (false, true), "an old generation rolls");
        let rolling = sts(
            2,
            StatefulSetStatus {
                observed_generation: Some(2),
                ready_replicas: Some(1),
                updated_replicas: Some(0),
                current_revision: Some("a".into()),
                update_revision: Some("b".into()),
                ..Default::default()
            },
        );
        assert_eq!(state(&rolling), (true, true), "ready while the pod rolls");
        // OnDelete: the pod was replaced by hand, currentRevision stays behind for good.
        let on_delete_done = sts(
            2,
            StatefulSetStatus {
                observed_generation: Some(2),
                ready_replicas: Some(1),
                updated_replicas: Some(1),
                current_revision: Some("a".into()),
                update_revision: Some("b".into()),
                ..Default::default()
            },
        );
        assert_eq!(state(&on_delete_done), (true, false));
    }

    fn pod(revision: &str, ready: Option<(&str, Timestamp)>) -> Pod {
        let mut p = Pod::default();
        p.metadata.labels =
            Some([("controller-revision-hash".to_owned(), revision.to_owned())].into());
        p.metadata.creation_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        p.status = ready.map(|(status, at)| PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: status.into(),
                last_transition_time: Some(Time(at)),
                ..Default::default()
            }]),
            ..Default::default()
        });
        p
    }

    #[test]
    fn only_a_long_unready_pod_on_an_old_revision_is_stuck() {
        let now = Timestamp::from_second(1_800_000_000).expect("time");
        let s = sts(
            3,
            StatefulSetStatus {
                update_revision: Some("new".into()),
                ..Default::default()
            },
        );
        let long_ago = now - SignedDuration::from_mins(5);
        let just_now = now - SignedDuration::from_secs(5);
        assert!(stuck(&s, &pod("old", Some(("False", long_ago))), now));
        assert!(
            !stuck(&s, &pod("old", Some(("False", just_now))), now),
            "give it time"
        );
        assert!(
            !stuck(&s, &pod("old", Some(("True", long_ago))), now),
            "the controller rolls a Ready pod"
        );
        assert!(
            !stuck(&s, &pod("new", Some(("False", long_ago))), now),
            "already on the new revision"
        );
        assert!(
            stuck(&s, &pod("old", None), now),
            "never reported, created long ago"
        );
    }
}
