//! Prometheus metrics, served on `/metrics`.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

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
            phases: Mutex::new(HashMap::new()),
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
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
