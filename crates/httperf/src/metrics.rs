//! The server's Prometheus metrics, served at `/metrics`.
//!
//! The counters are the server's own account of what it did, so tests and
//! users can check the client's figures against them (bytes sent, the
//! number of TLS connections a client really opened).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

/// Labels of `httperf_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// `blocks`, `metrics`, `profile` or `other`.
    pub handler: &'static str,
    /// The HTTP status code answered.
    pub code: u16,
}

/// What the server has done since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerStats {
    /// TLS connections established (handshake completed).
    pub connections_total: u64,
    /// Connections open now.
    pub active_connections: i64,
    /// `/blocks` responses still streaming.
    pub active_streams: i64,
    /// Requests answered, any path and status.
    pub requests_total: u64,
    /// Body bytes of `/blocks` responses handed to the HTTP layer.
    pub sent_bytes_total: u64,
}

/// The metric handles; cloning shares the underlying values.
#[derive(Clone, Debug, Default)]
pub(crate) struct ServerMetrics {
    pub connections: Counter,
    pub active_connections: Gauge,
    pub active_streams: Gauge,
    pub requests: Family<RequestLabels, Counter>,
    /// The sum over `requests`, which a family cannot give without encoding.
    requests_total: Counter,
    pub sent_bytes: Counter,
}

impl ServerMetrics {
    /// The metrics, registered in a new registry under `httperf_`.
    pub fn registered() -> (Self, Registry) {
        let metrics = Self::default();
        let mut registry = Registry::with_prefix("httperf");
        registry.register(
            "connections",
            "TLS connections accepted and handshaken",
            metrics.connections.clone(),
        );
        registry.register(
            "active_connections",
            "Connections currently open",
            metrics.active_connections.clone(),
        );
        registry.register(
            "active_streams",
            "Block responses currently streaming",
            metrics.active_streams.clone(),
        );
        registry.register(
            "requests",
            "Requests answered, by handler and status code",
            metrics.requests.clone(),
        );
        registry.register_with_unit(
            "sent",
            "Block bytes sent",
            Unit::Bytes,
            metrics.sent_bytes.clone(),
        );
        (metrics, registry)
    }

    pub fn stats(&self) -> ServerStats {
        ServerStats {
            connections_total: self.connections.get(),
            active_connections: self.active_connections.get(),
            active_streams: self.active_streams.get(),
            requests_total: self.requests_total.get(),
            sent_bytes_total: self.sent_bytes.get(),
        }
    }

    pub fn count_request(&self, handler: &'static str, code: u16) {
        self.requests
            .get_or_create(&RequestLabels { handler, code })
            .inc();
        self.requests_total.inc();
    }
}

/// Keeps a gauge raised for as long as the guard lives, so that a
/// connection or stream that ends in any way (completion, reset, abort)
/// is subtracted exactly once.
#[derive(Debug)]
pub(crate) struct GaugeGuard(Gauge);

impl GaugeGuard {
    pub fn raise(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
