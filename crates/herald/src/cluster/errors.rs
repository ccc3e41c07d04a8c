//! Redis errors of the adapter's own reads and writes (the worker's pipelines count theirs in
//! `herald_cluster_redis_failures_total`): counted by the step that failed in
//! `herald_cluster_redis_errors_total{op}` and logged at most once per 10 s per step, so an
//! outage gives a few lines rather than one per call. What a caller does after an error is
//! decided, and commented, at its call site; the log line says it.

use std::time::{Duration, Instant};

use herald_core::metrics::Metrics;
use metrics::Counter;
use parking_lot::Mutex;

/// The step of the adapter a Redis error interrupted (the `op` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// A command could not be added to the worker's pipeline.
    Pipeline,
    /// SUBSCRIBE to the control channel or to a channel's traffic.
    Subscribe,
    /// UNSUBSCRIBE from channels without local subscribers.
    Unsubscribe,
    /// Subscribing again to every channel after the subscriber connection came back.
    Resubscribe,
    /// Loading a channel's shared state (members, counts, cache).
    Snapshot,
    /// This node's heartbeat.
    Heartbeat,
    /// Re-registering this node's state after a (re)connect.
    Register,
    /// Finding dead nodes and removing their state.
    Reap,
    /// Removing this node's state on graceful leave.
    Leave,
    /// The debug console's relay: registering the apps watched here, reading those watched
    /// elsewhere, subscribing to their entries (`tap.rs`).
    Console,
}

impl Step {
    const ALL: [Step; 10] = [
        Step::Pipeline,
        Step::Subscribe,
        Step::Unsubscribe,
        Step::Resubscribe,
        Step::Snapshot,
        Step::Heartbeat,
        Step::Register,
        Step::Reap,
        Step::Leave,
        Step::Console,
    ];

    fn label(self) -> &'static str {
        match self {
            Step::Pipeline => "pipeline",
            Step::Subscribe => "subscribe",
            Step::Unsubscribe => "unsubscribe",
            Step::Resubscribe => "resubscribe",
            Step::Snapshot => "snapshot",
            Step::Heartbeat => "heartbeat",
            Step::Register => "register",
            Step::Reap => "reap",
            Step::Leave => "leave",
            Step::Console => "console",
        }
    }
}

/// At most one log line per step per this interval.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The counters, and when each step last logged.
pub(crate) struct RedisErrors {
    counters: [Counter; Step::ALL.len()],
    /// When each step last logged. parking_lot mutex: taken only when an error is recorded,
    /// for a comparison and a store; never across an await.
    logged: Mutex<[Option<Instant>; Step::ALL.len()]>,
}

impl RedisErrors {
    pub(crate) fn new(metrics: &Metrics) -> Self {
        RedisErrors {
            counters: Step::ALL
                .map(|step| metrics.labelled_counter("herald_cluster_redis_errors_total", "op", step.label())),
            logged: Mutex::new([None; Step::ALL.len()]),
        }
    }

    /// Counts the error; logs it with `then` (what the adapter does about it) unless this
    /// step logged within the last [`LOG_EVERY`].
    pub(crate) fn record(&self, step: Step, error: &dyn std::fmt::Display, then: &str) {
        let i = step as usize;
        self.counters[i].increment(1);
        let now = Instant::now();
        let log = {
            let mut logged = self.logged.lock();
            let due = logged[i].is_none_or(|at| now.duration_since(at) >= LOG_EVERY);
            if due {
                logged[i] = Some(now);
            }
            due
        };
        if log {
            tracing::warn!(op = step.label(), %error, "Redis error (counted in herald_cluster_redis_errors_total): {then}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_is_counted_by_step_but_a_step_logs_at_most_once_per_interval() {
        let recorder = std::sync::Arc::new(metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        let errors = RedisErrors::new(&Metrics::new(recorder));
        errors.record(Step::Snapshot, &"connection refused", "retried");
        let first_log = errors.logged.lock()[Step::Snapshot as usize];
        for _ in 0..2 {
            errors.record(Step::Snapshot, &"connection refused", "retried");
        }
        errors.record(Step::Reap, &"connection refused", "retried");
        let text = handle.render();
        assert!(text.contains(r#"herald_cluster_redis_errors_total{op="snapshot"} 3"#), "{text}");
        assert!(text.contains(r#"herald_cluster_redis_errors_total{op="reap"} 1"#), "{text}");
        let logged = errors.logged.lock();
        assert!(first_log.is_some());
        assert_eq!(logged[Step::Snapshot as usize], first_log, "logged again within the interval");
        assert!(logged[Step::Reap as usize].is_some(), "another step logs on its own schedule");
        assert!(logged[Step::Leave as usize].is_none());
    }
}
