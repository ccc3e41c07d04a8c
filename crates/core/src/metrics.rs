//! Counters and gauges herald exports at `GET /metrics`.
//!
//! Handles are registered once against a recorder owned by the server (not the process-global
//! one), so several servers can live in one process (tests) without mixing their numbers, and
//! the hot path only does atomic increments on pre-registered handles.
//! Metric names are stable and documented in docs/OPERATIONS.md.

use herald_protocol::codes::{CloseCode, ErrorCode};
use metrics::{Counter, Gauge, Key, Label, Level, Metadata, Recorder};
use std::sync::Arc;

static METADATA: Metadata<'static> = Metadata::new("herald", Level::INFO, Some(module_path!()));

/// Pre-registered metric handles plus the recorder for labelled, rarely-hit series.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<dyn Recorder + Send + Sync>,
    /// `herald_connections`: open WebSocket connections.
    pub connections: Gauge,
    /// `herald_connections_total`: connections admitted.
    pub connections_total: Counter,
    /// `herald_subscriptions`: channel subscriptions on this node.
    pub subscriptions: Gauge,
    /// `herald_channels`: channels with local subscribers.
    pub channels: Gauge,
    /// `herald_ws_messages_in_total`: text frames received from clients.
    pub ws_messages_in: Counter,
    /// `herald_ws_bytes_in_total`: bytes of those frames.
    pub ws_bytes_in: Counter,
    /// `herald_ws_messages_out_total`: frames written to clients.
    pub ws_messages_out: Counter,
    /// `herald_ws_bytes_out_total`: bytes of those frames.
    pub ws_bytes_out: Counter,
    /// `herald_client_events_total`: client events relayed.
    pub client_events: Counter,
    /// `herald_api_events_published_total`: events published through the HTTP API.
    pub api_events_published: Counter,
    /// `herald_slow_consumer_disconnects_total`: connections closed with 4100 because their
    /// outbox overflowed.
    pub slow_consumer_disconnects: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Registers every handle on `recorder` (the server's own, not the global one).
    pub fn new(recorder: Arc<dyn Recorder + Send + Sync>) -> Self {
        let c = |name: &'static str| recorder.register_counter(&Key::from_static_name(name), &METADATA);
        let g = |name: &'static str| recorder.register_gauge(&Key::from_static_name(name), &METADATA);
        Metrics {
            connections: g("herald_connections"),
            connections_total: c("herald_connections_total"),
            subscriptions: g("herald_subscriptions"),
            channels: g("herald_channels"),
            ws_messages_in: c("herald_ws_messages_in_total"),
            ws_bytes_in: c("herald_ws_bytes_in_total"),
            ws_messages_out: c("herald_ws_messages_out_total"),
            ws_bytes_out: c("herald_ws_bytes_out_total"),
            client_events: c("herald_client_events_total"),
            api_events_published: c("herald_api_events_published_total"),
            slow_consumer_disconnects: c("herald_slow_consumer_disconnects_total"),
            recorder,
        }
    }

    /// Handles on a recorder that drops everything (unit tests).
    #[cfg(test)]
    pub(crate) fn noop() -> Self {
        Metrics::new(Arc::new(metrics::NoopRecorder))
    }

    /// A counter registered on this server's recorder (for components outside the core, such
    /// as the cluster adapter). Register once and keep the handle.
    pub fn counter(&self, name: &'static str) -> Counter {
        self.recorder.register_counter(&Key::from_static_name(name), &METADATA)
    }

    /// A counter with one label, registered on this server's recorder (one handle per label
    /// value; register once and keep it).
    pub fn labelled_counter(&self, name: &'static str, label: &'static str, value: &'static str) -> Counter {
        let key = Key::from_parts(name, vec![Label::new(label, value)]);
        self.recorder.register_counter(&key, &METADATA)
    }

    /// `herald_app_connections{app_id}`: open WebSocket connections of one app on this node.
    /// Registered once per app namespace (which keeps the handle), never per connection.
    pub fn app_connections(&self, app_id: &str) -> Gauge {
        let key = Key::from_parts("herald_app_connections", vec![Label::new("app_id", app_id.to_owned())]);
        self.recorder.register_gauge(&key, &METADATA)
    }

    /// Counts one protocol error sent to a client, by code (`null` codes count as "none").
    pub fn error(&self, code: Option<ErrorCode>) {
        let code = code.map_or_else(|| "none".to_owned(), |c| c.to_string());
        let key = Key::from_parts("herald_errors_total", vec![Label::new("code", code)]);
        self.recorder.register_counter(&key, &METADATA).increment(1);
    }

    /// Counts one connection closed by the server, by close code.
    pub fn closed_by_server(&self, code: CloseCode) {
        let key = Key::from_parts("herald_server_closes_total", vec![Label::new("code", code.to_string())]);
        self.recorder.register_counter(&key, &METADATA).increment(1);
    }

    /// Counts one request refused because `app_id` is over a quota (`reason`: `messages` or
    /// `api_rate`): `herald_quota_refusals_total{app_id,reason}`.
    pub fn quota_refusal(&self, app_id: &str, reason: &'static str) {
        let labels = vec![Label::new("app_id", app_id.to_owned()), Label::new("reason", reason)];
        let key = Key::from_parts("herald_quota_refusals_total", labels);
        self.recorder.register_counter(&key, &METADATA).increment(1);
    }

    /// Adds `n` to `herald_messages_total{app_id}`: messages counted for the app's usage (API
    /// requests, deliveries, webhook requests), added by the usage flusher once per second.
    pub fn messages(&self, app_id: &str, n: u64) {
        let key = Key::from_parts("herald_messages_total", vec![Label::new("app_id", app_id.to_owned())]);
        self.recorder.register_counter(&key, &METADATA).increment(n);
    }

    /// Counts one HTTP API request by status.
    pub fn http_request(&self, status: u16) {
        let key = Key::from_parts("herald_http_requests_total", vec![Label::new("status", status.to_string())]);
        self.recorder.register_counter(&key, &METADATA).increment(1);
    }
}
