//! Kubernetes Events for transitions and failures, rate-limited per object and reason so a
//! failing Atsign does not flood the API server.
//!
//! Events are created directly rather than through kube's `Recorder`: its series cache keeps
//! every event of the last six minutes and scans all of them on each publish, which at fleet
//! scale made publishing quadratic and held tens of MiB. The rate limit here already keeps a
//! repeating event to one per interval.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use tokio::time::Instant;

const CONTROLLER: &str = "atfleet-operator";

pub struct Events {
    client: kube::Client,
    /// Reporting instance (the pod name); the controller name when unset.
    instance: String,
    min_interval: Duration,
    last: Mutex<Recent>,
}

/// When each (object, reason) was last published; pruned at most once per interval, so a large
/// fleet does not pay a scan of the whole map on every event.
struct Recent {
    at: HashMap<(String, String), Instant>,
    pruned: Instant,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    pub fn new(client: kube::Client, instance: Option<String>, min_interval: Duration) -> Self {
        Self {
            client,
            instance: instance.unwrap_or_else(|| CONTROLLER.to_owned()),
            min_interval,
            last: Mutex::new(Recent {
                at: HashMap::new(),
                pruned: Instant::now(),
            }),
        }
    }

    /// Publishes unless the same reason was published for the same object within the interval.
    /// Failures to publish are logged, never propagated: events are advisory.
    pub async fn publish(
        &self,
        object: &ObjectReference,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let key = (object.uid.clone().unwrap_or_default(), reason.to_owned());
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if last
                .at
                .get(&key)
                .is_some_and(|t| now.duration_since(*t) < self.min_interval)
            {
                return;
            }
            // Forget entries old enough not to matter, keeping the map small.
            if now.duration_since(last.pruned) >= self.min_interval {
                let min_interval = self.min_interval;
                last.at.retain(|_, t| now.duration_since(*t) < min_interval);
                last.pruned = now;
            }
            last.at.insert(key, now);
        }
        let now = jiff::Timestamp::now();
        let namespace = object.namespace.clone().unwrap_or_else(|| "default".into());
        let event = Event {
            metadata: ObjectMeta {
                // Unique per publish, as the API server expects of new events.
                name: Some(format!(
                    "{}.{:x}",
                    object.name.as_deref().unwrap_or(CONTROLLER),
                    now.as_nanosecond()
                )),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(if warning { "Warning" } else { "Normal" }.to_owned()),
            reason: Some(reason.to_owned()),
            action: Some(action.to_owned()),
            note: Some(note.chars().take(1000).collect()),
            regarding: Some(object.clone()),
            reporting_controller: Some(CONTROLLER.to_owned()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::warn!(error = %e, reason, "could not publish event");
        }
    }
}
