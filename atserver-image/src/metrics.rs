//! Prometheus metrics (served on `/metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    pub verb: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerbLabel {
    pub verb: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub connections: Family<TypeLabel, Gauge>,
    pub commands: Family<CommandLabels, Counter>,
    pub latency: Family<VerbLabel, Histogram>,
    pub notifications: Family<StatusLabel, Gauge>,
    pub store_bytes: Gauge,
    pub last_commit_id: Gauge,
    pub handshake_failures: Counter,
    pub rejected_connections: Counter,
    pub cert_reloads: Counter,
    pub auth_failures: Counter,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("atserver");
        let connections = Family::<TypeLabel, Gauge>::default();
        let commands = Family::<CommandLabels, Counter>::default();
        let latency = Family::<VerbLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.5, 12))
        });
        let notifications = Family::<StatusLabel, Gauge>::default();
        let store_bytes = Gauge::default();
        let last_commit_id = Gauge::default();
        let handshake_failures = Counter::default();
        let rejected_connections = Counter::default();
        let cert_reloads = Counter::default();
        let auth_failures = Counter::default();
        registry.register(
            "connections",
            "Open connections by type",
            connections.clone(),
        );
        registry.register("commands", "Commands by verb and outcome", commands.clone());
        registry.register(
            "command_duration_seconds",
            "Command latency",
            latency.clone(),
        );
        registry.register(
            "notifications",
            "Stored notifications by status",
            notifications.clone(),
        );
        registry.register(
            "store_bytes",
            "Size of the SQLite store",
            store_bytes.clone(),
        );
        registry.register("last_commit_id", "Latest commit id", last_commit_id.clone());
        registry.register(
            "tls_handshake_failures",
            "Failed or timed-out TLS handshakes",
            handshake_failures.clone(),
        );
        registry.register(
            "rejected_connections",
            "Connections refused with AT0012",
            rejected_connections.clone(),
        );
        registry.register(
            "certificate_reloads",
            "TLS certificate reloads",
            cert_reloads.clone(),
        );
        registry.register(
            "auth_failures",
            "Failed cram/pkam attempts",
            auth_failures.clone(),
        );
        Metrics {
            registry,
            connections,
            commands,
            latency,
            notifications,
            store_bytes,
            last_commit_id,
            handshake_failures,
            rejected_connections,
            cert_reloads,
            auth_failures,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
