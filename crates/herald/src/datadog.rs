//! DogStatsD export (`[datadog]`): the recorder every metric handle of a server is registered
//! on, sending each one both to Prometheus (`/metrics`) and, when `[datadog]` is set, to a
//! DogStatsD server over UDP.
//!
//! The sending is `metrics-exporter-dogstatsd`'s (the `metrics` project's own exporter): it
//! aggregates in its own registry and a background thread flushes it every `interval`, counters
//! as deltas (`|c`), gauges as values (`|g`), histograms as distributions (`|d`), each metric's
//! labels (`app_id`, `status`, `code`, …) and the configured `tags` as DogStatsD tags. This
//! module owns the two things around it:
//!
//! * [`ServerRecorder`], a two-way tee. `metrics_util::layers::Fanout` would do it, but it is
//!   not `Send` (it boxes `dyn Recorder + Sync`), while herald shares its recorder between
//!   threads as `Arc<dyn Recorder + Send + Sync>`; the tee is the few lines that fan one handle
//!   out to both.
//! * the DogStatsD name: herald's names carry a `herald_` prefix for Prometheus; towards
//!   Datadog it is dropped and `datadog.prefix` put in front with a dot, so
//!   `herald_app_connections` is sent as `herald.app_connections` (Datadog's dotted namespaces).
//!
//! The exporter's thread has no stop signal: it lives as long as the process, which for the
//! binary is as long as its one server. `[datadog]` needs a restart to change (SIGHUP reports
//! it as such).

use std::sync::Arc;

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Label, Metadata, Recorder, SharedString,
    Unit,
};
use metrics_exporter_dogstatsd::{DogStatsDBuilder, DogStatsDRecorder};
use metrics_exporter_prometheus::PrometheusRecorder;

use crate::config::datadog::DatadogConfig;

/// Why the DogStatsD exporter could not start (start-up fails naming the key).
#[derive(Debug, thiserror::Error)]
#[error("datadog.statsd_addr: cannot send DogStatsD to {addr:?}: {source}")]
pub(crate) struct DatadogError {
    addr: String,
    #[source]
    source: metrics_exporter_dogstatsd::BuildError,
}

/// The recorder a server registers every metric on: Prometheus always, DogStatsD when
/// configured. Holds no lock: each registration asks both recorders for their handle and
/// returns one handle that updates both.
pub(crate) struct ServerRecorder {
    prometheus: PrometheusRecorder,
    dogstatsd: Option<DogStatsDRecorder>,
}

impl ServerRecorder {
    /// Wraps `prometheus`, adding a DogStatsD exporter when `datadog` is set (which starts its
    /// flushing thread).
    pub(crate) fn new(prometheus: PrometheusRecorder, datadog: Option<&DatadogConfig>) -> Result<Self, DatadogError> {
        let dogstatsd = datadog.map(exporter).transpose()?;
        Ok(ServerRecorder { prometheus, dogstatsd })
    }
}

/// Builds the DogStatsD exporter of `dd`.
fn exporter(dd: &DatadogConfig) -> Result<DogStatsDRecorder, DatadogError> {
    let err = |source| DatadogError { addr: dd.statsd_addr.clone(), source };
    let tags = dd.tags.iter().map(|(k, v)| Label::new(k.clone(), v.clone())).collect();
    let mut builder = DogStatsDBuilder::default()
        .with_remote_address(&dd.statsd_addr)
        .map_err(err)?
        .with_flush_interval(dd.interval)
        .with_global_labels(tags)
        // Its self-telemetry registers on the process-global recorder, which herald does not use.
        .with_telemetry(false);
    if !dd.prefix.is_empty() {
        builder = builder.set_global_prefix(dd.prefix.clone());
    }
    builder.build().map_err(err)
}

/// The DogStatsD key of a herald metric: `herald_` dropped (the prefix replaces it), labels kept.
fn datadog_key(key: &Key) -> Key {
    match key.name().strip_prefix("herald_") {
        Some(rest) => Key::from_parts(rest.to_owned(), key.labels().cloned().collect::<Vec<_>>()),
        None => key.clone(),
    }
}

impl Recorder for ServerRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.prometheus.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.prometheus.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.prometheus.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        let prometheus = self.prometheus.register_counter(key, metadata);
        match &self.dogstatsd {
            Some(dd) => Counter::from_arc(Arc::new(Tee(prometheus, dd.register_counter(&datadog_key(key), metadata)))),
            None => prometheus,
        }
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        let prometheus = self.prometheus.register_gauge(key, metadata);
        match &self.dogstatsd {
            Some(dd) => Gauge::from_arc(Arc::new(Tee(prometheus, dd.register_gauge(&datadog_key(key), metadata)))),
            None => prometheus,
        }
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        let prometheus = self.prometheus.register_histogram(key, metadata);
        match &self.dogstatsd {
            Some(dd) => {
                Histogram::from_arc(Arc::new(Tee(prometheus, dd.register_histogram(&datadog_key(key), metadata))))
            }
            None => prometheus,
        }
    }
}

/// One handle updating two (Prometheus's and DogStatsD's).
struct Tee<H>(H, H);

impl CounterFn for Tee<Counter> {
    fn increment(&self, value: u64) {
        self.0.increment(value);
        self.1.increment(value);
    }

    fn absolute(&self, value: u64) {
        self.0.absolute(value);
        self.1.absolute(value);
    }
}

impl GaugeFn for Tee<Gauge> {
    fn increment(&self, value: f64) {
        self.0.increment(value);
        self.1.increment(value);
    }

    fn decrement(&self, value: f64) {
        self.0.decrement(value);
        self.1.decrement(value);
    }

    fn set(&self, value: f64) {
        self.0.set(value);
        self.1.set(value);
    }
}

impl HistogramFn for Tee<Histogram> {
    fn record(&self, value: f64) {
        self.0.record(value);
        self.1.record(value);
    }

    fn record_many(&self, value: f64, count: usize) {
        self.0.record_many(value, count);
        self.1.record_many(value, count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_herald_prefix_is_dropped_and_labels_kept() {
        let key = Key::from_parts("herald_app_connections", vec![Label::new("app_id", "a")]);
        let dd = datadog_key(&key);
        assert_eq!(dd.name(), "app_connections");
        assert_eq!(dd.labels().map(|l| (l.key(), l.value())).collect::<Vec<_>>(), [("app_id", "a")]);
        assert_eq!(datadog_key(&Key::from_static_name("other")).name(), "other");
    }
}
