//! Kubernetes Events for transitions and failures, rate-limited per object and reason so a
//! failing Atsign does not flood the API server.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::time::Instant;

pub struct Events {
    recorder: Recorder,
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
        let reporter = Reporter {
            controller: "atfleet-operator".into(),
            instance,
        };
        Self {
            recorder: Recorder::new(client, reporter),
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
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_owned(),
            note: Some(note.chars().take(1000).collect()),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, object).await {
            tracing::warn!(error = %e, reason, "could not publish event");
        }
    }
}
