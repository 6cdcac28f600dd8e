//! Prometheus metrics, served on `/metrics`.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::crd::Phase;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    pub step: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RotationLabels {
    pub step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub operation: String,
    pub result: String,
}

pub struct Metrics {
    registry: Registry,
    pub reconcile_duration: Histogram,
    pub reconcile_errors: Family<ReasonLabels, Counter>,
    pub reconciles_in_flight: Gauge,
    pub atsigns: Family<PhaseLabels, Gauge>,
    pub certificate_days_left: Family<ObjectLabels, Gauge<f64, AtomicU64>>,
    pub directory_calls: Family<CallLabels, Counter>,
    pub leader: Gauge,
    pub drift_corrections: Family<KindLabels, Counter>,
    pub api_errors: Family<RequestLabels, Counter>,
    pub reconcile_outcomes: Family<StepLabels, Counter>,
    pub ca_rotation_steps: Family<RotationLabels, Counter>,
    pub queue_depth: Gauge,
    pub queue_oldest: Gauge<f64, AtomicU64>,
    pub queue_wait: Histogram,
    /// Atsigns with a change not yet reconciled, since when.
    pending: Mutex<HashMap<(String, String), Instant>>,
    phases: Mutex<HashMap<(String, String), Phase>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("atfleet_operator");
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let reconcile_errors = Family::<ReasonLabels, Counter>::default();
        let reconciles_in_flight = Gauge::default();
        let atsigns = Family::<PhaseLabels, Gauge>::default();
        let certificate_days_left = Family::<ObjectLabels, Gauge<f64, AtomicU64>>::default();
        let directory_calls = Family::<CallLabels, Counter>::default();
        let leader = Gauge::default();
        let drift_corrections = Family::<KindLabels, Counter>::default();
        let api_errors = Family::<RequestLabels, Counter>::default();
        registry.register(
            "api_errors",
            "Kubernetes API requests that failed (status 400 and up but 404, or no answer), by verb and code",
            api_errors.clone(),
        );
        let reconcile_outcomes = Family::<StepLabels, Counter>::default();
        registry.register(
            "reconcile_outcomes",
            "Finished reconciles by the step they ended in and its reason (Ok when all steps ran)",
            reconcile_outcomes.clone(),
        );
        let ca_rotation_steps = Family::<RotationLabels, Counter>::default();
        registry.register(
            "ca_rotation_steps",
            "Moves of the built-in CA's rotation made (Begin, Promote, Retire)",
            ca_rotation_steps.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "work_queue_depth",
            "Atsigns with a change (their own or a child's) not yet reconciled",
            queue_depth.clone(),
        );
        let queue_oldest = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "work_queue_oldest_age",
            "How long the longest-waiting change has waited for its reconcile",
            prometheus_client::registry::Unit::Seconds,
            queue_oldest.clone(),
        );
        let queue_wait = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register_with_unit(
            "work_queue_wait",
            "Time from a change to the start of the reconcile that handles it",
            prometheus_client::registry::Unit::Seconds,
            queue_wait.clone(),
        );
        registry.register(
            "drift_corrections",
            "Children changed by someone else and applied again, by kind",
            drift_corrections.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Time one reconcile of an Atsign takes",
            prometheus_client::registry::Unit::Seconds,
            reconcile_duration.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconciles by reason",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconciles_in_flight",
            "Reconciles running now",
            reconciles_in_flight.clone(),
        );
        registry.register("atsigns", "Atsigns by phase", atsigns.clone());
        registry.register(
            "certificate_days_left",
            "Days until an atServer's certificate expires",
            certificate_days_left.clone(),
        );
        registry.register(
            "directory_calls",
            "atDirectory API calls by operation and result",
            directory_calls.clone(),
        );
        registry.register(
            "leader",
            "Whether this replica holds the leader lease",
            leader.clone(),
        );
        for phase in Phase::ALL {
            atsigns
                .get_or_create(&PhaseLabels {
                    phase: phase.as_str().into(),
                })
                .set(0);
        }
        Self {
            registry,
            reconcile_duration,
            reconcile_errors,
            reconciles_in_flight,
            atsigns,
            certificate_days_left,
            directory_calls,
            leader,
            drift_corrections,
            api_errors,
            reconcile_outcomes,
            ca_rotation_steps,
            queue_depth,
            queue_oldest,
            queue_wait,
            pending: Mutex::new(HashMap::new()),
            phases: Mutex::new(HashMap::new()),
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        self.refresh_queue_age();
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn observe_reconcile(&self, took: Duration) {
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    pub fn reconcile_failed(&self, reason: &str) {
        self.reconcile_errors
            .get_or_create(&ReasonLabels {
                reason: reason.into(),
            })
            .inc();
    }

    pub fn api_error(&self, verb: &str, code: &str) {
        self.api_errors
            .get_or_create(&RequestLabels {
                verb: verb.into(),
                code: code.into(),
            })
            .inc();
    }

    /// A reconcile ended in `step` (`Done` when every step ran) for `reason`.
    pub fn reconcile_outcome(&self, step: &str, reason: &str) {
        self.reconcile_outcomes
            .get_or_create(&StepLabels {
                step: step.into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// A change arrived for the Atsign `namespace/name`; the first one since its last reconcile
    /// starts the wait.
    pub fn enqueued(&self, namespace: &str, name: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending
            .entry((namespace.to_owned(), name.to_owned()))
            .or_insert_with(Instant::now);
        self.queue_depth
            .set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
    }

    /// The reconcile of `namespace/name` starts (or the Atsign is gone): its wait ends.
    pub fn dequeued(&self, namespace: &str, name: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(since) = pending.remove(&(namespace.to_owned(), name.to_owned())) {
            self.queue_wait.observe(since.elapsed().as_secs_f64());
        }
        self.queue_depth
            .set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
    }

    /// The controller stopped (leadership lost): nothing waits in its queue any more.
    pub fn queue_cleared(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.clear();
        self.queue_depth.set(0);
        self.queue_oldest.set(0.0);
    }

    fn refresh_queue_age(&self) {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let oldest = pending
            .values()
            .map(|t| t.elapsed().as_secs_f64())
            .fold(0.0, f64::max);
        self.queue_oldest.set(oldest);
    }

    /// A move of the built-in CA's rotation was made.
    pub fn ca_rotation(&self, step: &str) {
        self.ca_rotation_steps
            .get_or_create(&RotationLabels { step: step.into() })
            .inc();
    }

    pub fn drift_corrected(&self, kind: &str) {
        self.drift_corrections
            .get_or_create(&KindLabels { kind: kind.into() })
            .inc();
    }

    pub fn directory_call(&self, operation: &str, result: &str) {
        self.directory_calls
            .get_or_create(&CallLabels {
                operation: operation.into(),
                result: result.into(),
            })
            .inc();
    }

    /// Records an Atsign's phase (`None` when it is gone) and refreshes the per-phase counts.
    pub fn set_phase(&self, namespace: &str, name: &str, phase: Option<Phase>) {
        let mut phases = self.phases.lock().unwrap_or_else(|p| p.into_inner());
        let key = (namespace.to_owned(), name.to_owned());
        match phase {
            Some(p) => {
                phases.insert(key, p);
            }
            None => {
                phases.remove(&key);
            }
        }
        for p in Phase::ALL {
            let count = phases.values().filter(|v| **v == p).count();
            self.atsigns
                .get_or_create(&PhaseLabels {
                    phase: p.as_str().into(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    pub fn set_certificate_days_left(&self, namespace: &str, name: &str, days: Option<f64>) {
        let labels = ObjectLabels {
            namespace: namespace.into(),
            name: name.into(),
        };
        match days {
            Some(d) => {
                self.certificate_days_left.get_or_create(&labels).set(d);
            }
            None => {
                self.certificate_days_left.remove(&labels);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_queue_reports_depth_and_the_oldest_wait() {
        let m = Metrics::new();
        m.enqueued("fleet", "alice");
        tokio::time::advance(Duration::from_secs(3)).await;
        m.enqueued("fleet", "alice");
        m.enqueued("fleet", "bob");
        let text = m.encode();
        assert!(
            text.contains("atfleet_operator_work_queue_depth 2"),
            "{text}"
        );
        assert!(
            text.contains("atfleet_operator_work_queue_oldest_age_seconds 3.0"),
            "{text}"
        );
        m.dequeued("fleet", "alice");
        m.dequeued("fleet", "bob");
        m.dequeued("fleet", "carol");
        let text = m.encode();
        assert!(
            text.contains("atfleet_operator_work_queue_depth 0"),
            "{text}"
        );
        assert!(
            text.contains("atfleet_operator_work_queue_wait_seconds_count 2"),
            "{text}"
        );
        assert!(
            text.contains("atfleet_operator_work_queue_wait_seconds_sum 3.0"),
            "{text}"
        );
    }
}
