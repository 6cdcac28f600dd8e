//! Server-to-server metrics, registered into the server's Prometheus registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabel {
    pub peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabel {
    /// `outbound` (we proved ourselves) or `inbound` (a peer proved itself to us).
    pub direction: String,
    pub result: String,
}

/// How many peers the queue-depth gauge reports at most (the deepest ones).
pub const QUEUE_DEPTH_TOP_K: usize = 10;

#[derive(Clone)]
pub struct PeerMetrics {
    pub outbound_connections: Counter,
    pub pol_handshakes: Family<DirectionLabel, Counter>,
    pub deliveries: Family<ResultLabel, Counter>,
    pub delivery_latency: Histogram,
    pub queue_depth: Family<PeerLabel, Gauge>,
    pub cache_hits: Counter,
    pub cache_refreshes: Family<ResultLabel, Counter>,
}

impl PeerMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = PeerMetrics {
            outbound_connections: Counter::default(),
            pol_handshakes: Family::default(),
            deliveries: Family::default(),
            delivery_latency: Histogram::new(exponential_buckets(0.001, 2.5, 14)),
            queue_depth: Family::default(),
            cache_hits: Counter::default(),
            cache_refreshes: Family::default(),
        };
        registry.register(
            "peer_outbound_connections",
            "Connections opened to other atServers",
            m.outbound_connections.clone(),
        );
        registry.register(
            "pol_handshakes",
            "from/pol handshakes by direction and result",
            m.pol_handshakes.clone(),
        );
        registry.register(
            "notification_deliveries",
            "Delivery attempts of notifications to peers by resulting status",
            m.deliveries.clone(),
        );
        registry.register(
            "notification_delivery_seconds",
            "Time from queueing a notification to its delivery",
            m.delivery_latency.clone(),
        );
        registry.register(
            "notification_queue_depth",
            "Queued notifications per recipient (the deepest peers only)",
            m.queue_depth.clone(),
        );
        registry.register(
            "cache_hits",
            "Lookups of other atSigns' data answered from the cache",
            m.cache_hits.clone(),
        );
        registry.register(
            "cache_refreshes",
            "Remote fetches that refreshed the cache, by result",
            m.cache_refreshes.clone(),
        );
        m
    }

    pub fn pol(&self, direction: &str, ok: bool) {
        self.pol_handshakes
            .get_or_create(&DirectionLabel {
                direction: direction.into(),
                result: if ok { "ok" } else { "failed" }.into(),
            })
            .inc();
    }

    pub fn delivery(&self, status: &str) {
        self.deliveries
            .get_or_create(&ResultLabel {
                result: status.into(),
            })
            .inc();
    }

    pub fn refresh(&self, result: &str) {
        self.cache_refreshes
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
    }

    /// Replaces the queue-depth series with the `QUEUE_DEPTH_TOP_K` deepest peers.
    pub fn set_queue_depths(&self, mut depths: Vec<(String, i64)>) {
        depths.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        depths.truncate(QUEUE_DEPTH_TOP_K);
        self.queue_depth.clear();
        for (peer, depth) in depths {
            self.queue_depth
                .get_or_create(&PeerLabel { peer })
                .set(depth);
        }
    }
}
