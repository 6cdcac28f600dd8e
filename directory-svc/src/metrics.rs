//! Prometheus metrics of the directory, served on `/metrics`.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpResultLabel {
    pub op: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

type HistogramFamily = Family<OpLabel, Histogram, fn() -> Histogram>;

fn db_latency_histogram() -> Histogram {
    // 0.25 ms … ~4 s
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// Every metric the directory exports. Cheap to clone (shared handles).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub lookups: Family<ResultLabel, Counter>,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub cache_notifications: Family<OpLabel, Counter>,
    pub registrations: Family<OpResultLabel, Counter>,
    pub db_latency: HistogramFamily,
    pub db_errors: Family<OpLabel, Counter>,
    pub db_up: Gauge,
    pub change_listener_up: Gauge,
    pub root_connections: Gauge,
    pub root_rejections: Family<ReasonLabel, Counter>,
    pub miss_delays: Counter,
    pub tls_reloads: Family<ResultLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let lookups = Family::<ResultLabel, Counter>::default();
        registry.register(
            "atdirectory_lookups",
            "Root-protocol lookups by result (found, not_found, invalid, error)",
            lookups.clone(),
        );
        let cache_hits = Counter::default();
        registry.register(
            "atdirectory_cache_hits",
            "Lookups answered from the cache",
            cache_hits.clone(),
        );
        let cache_misses = Counter::default();
        registry.register(
            "atdirectory_cache_misses",
            "Lookups that had to ask the database",
            cache_misses.clone(),
        );
        let cache_notifications = Family::<OpLabel, Counter>::default();
        registry.register(
            "atdirectory_cache_notifications",
            "Change notifications applied to the cache, by operation",
            cache_notifications.clone(),
        );
        let registrations = Family::<OpResultLabel, Counter>::default();
        registry.register(
            "atdirectory_registrations",
            "Registration API writes by operation and result",
            registrations.clone(),
        );
        let db_latency: HistogramFamily = Family::new_with_constructor(db_latency_histogram);
        registry.register(
            "atdirectory_db_query_duration_seconds",
            "Database query latency by operation",
            db_latency.clone(),
        );
        let db_errors = Family::<OpLabel, Counter>::default();
        registry.register(
            "atdirectory_db_errors",
            "Failed database operations",
            db_errors.clone(),
        );
        let db_up = Gauge::default();
        registry.register(
            "atdirectory_db_up",
            "1 when the last database health check passed",
            db_up.clone(),
        );
        let change_listener_up = Gauge::default();
        registry.register(
            "atdirectory_change_listener_up",
            "1 while the cache is subscribed to registration changes (0: it may serve answers up to a TTL old)",
            change_listener_up.clone(),
        );
        let root_connections = Gauge::default();
        registry.register(
            "atdirectory_root_connections",
            "Open root-protocol connections",
            root_connections.clone(),
        );
        let root_rejections = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "atdirectory_root_rejections",
            "Root-protocol connections closed by abuse control, by reason",
            root_rejections.clone(),
        );
        let miss_delays = Counter::default();
        registry.register(
            "atdirectory_miss_delays",
            "Not-found replies delayed because the connection missed repeatedly",
            miss_delays.clone(),
        );
        let tls_reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "atdirectory_tls_reloads",
            "Certificate reloads after the files changed, by result",
            tls_reloads.clone(),
        );
        Self {
            registry: Arc::new(registry),
            lookups,
            cache_hits,
            cache_misses,
            cache_notifications,
            registrations,
            db_latency,
            db_errors,
            db_up,
            change_listener_up,
            root_connections,
            root_rejections,
            miss_delays,
            tls_reloads,
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    pub fn lookup(&self, result: &'static str) {
        self.lookups.get_or_create(&ResultLabel { result }).inc();
    }

    pub fn reject(&self, reason: &'static str) {
        self.root_rejections
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    pub fn registration(&self, op: &'static str, result: &'static str) {
        self.registrations
            .get_or_create(&OpResultLabel { op, result })
            .inc();
    }
}
