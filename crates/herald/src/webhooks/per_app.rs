//! Per-app webhook limits and what happened to an app's webhooks: the metrics labelled
//! `app_id`, and the aggregated warnings (one line per app and kind per [`REPORT_INTERVAL`]
//! with a count, instead of one line per dropped event or dead letter: a flood must not flood
//! the log too).
//!
//! [`PerApp`] is shared by the sink (socket hot path), the dispatcher, the workers and the
//! housekeeping task; everything in it is either immutable or an atomic / metric handle, so no
//! caller ever waits for another. It is keyed by app id, not by position in the config, so apps
//! can gain and lose webhook targets at run time (`Webhooks::set_apps`). The same report turns
//! an app's dead letters into at most one `webhook_dead_letter` alert per interval
//! (`housekeeping.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics::{Counter, Key, Label, Recorder};

use super::METADATA;

/// How often the aggregated warnings are written.
pub(crate) const REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// What is counted per app and reported in the aggregated warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An event dropped because the app's queue was full.
    Dropped,
    /// A delivery not written because the app's outbox was at `webhook_max_pending`.
    Refused,
    /// A delivery moved to the dead letters.
    DeadLettered,
    /// Dead letters removed by the count cap or the age limit.
    Pruned,
}

const KINDS: [Kind; 4] = [Kind::Dropped, Kind::Refused, Kind::DeadLettered, Kind::Pruned];

impl Kind {
    fn sentence(self, n: u64, app: &str) -> String {
        let secs = REPORT_INTERVAL.as_secs();
        match self {
            Kind::Dropped => format!(
                "{n} webhook events dropped for app {app} in the last {secs} s: its queue was full \
                 (webhook_queue_size; see herald_webhook_events_dropped_total)"
            ),
            Kind::Refused => format!(
                "{n} webhook deliveries refused for app {app} in the last {secs} s: its outbox was full \
                 (webhook_max_pending; see herald_webhook_deliveries_refused_total)"
            ),
            Kind::DeadLettered => format!(
                "{n} webhook deliveries dead-lettered for app {app} in the last {secs} s \
                 (failed for the whole retry window)"
            ),
            Kind::Pruned => format!(
                "{n} webhook dead letters pruned for app {app} in the last {secs} s \
                 (webhook_dead_letters_max / webhook_dead_letter_max_age)"
            ),
        }
    }
}

/// One app's counters (metrics labelled `app_id`, and the counts of the next warning). Kept
/// by app id while the app has webhook targets or work in flight (`Shared::apps` in `mod.rs`);
/// its limits are part of each configuration generation (`routes::Limits`).
#[derive(Debug)]
pub(crate) struct PerApp {
    pub app_id: String,
    dropped: Counter,
    refused: Counter,
    pruned_count: Counter,
    pruned_age: Counter,
    /// Counts since the last report, by [`KINDS`] position; swapped to 0 by [`PerApp::report`].
    window: [AtomicU64; 4],
}

impl PerApp {
    /// Registers the app's labelled metrics on `r` (an app seen again gets the same series).
    pub(crate) fn new(app_id: &str, r: &dyn Recorder) -> PerApp {
        let labelled = |name: &'static str, extra: Option<(&'static str, &'static str)>| {
            let mut labels = vec![Label::new("app_id", app_id.to_owned())];
            if let Some((k, v)) = extra {
                labels.push(Label::new(k, v));
            }
            r.register_counter(&Key::from_parts(name, labels), &METADATA)
        };
        PerApp {
            app_id: app_id.to_owned(),
            dropped: labelled("herald_webhook_events_dropped_total", None),
            refused: labelled("herald_webhook_deliveries_refused_total", None),
            pruned_count: labelled("herald_webhook_dead_letters_pruned_total", Some(("reason", "count"))),
            pruned_age: labelled("herald_webhook_dead_letters_pruned_total", Some(("reason", "age"))),
            window: Default::default(),
        }
    }

    /// Counts `n` occurrences of `kind` (metric and the next report).
    pub(crate) fn note(&self, kind: Kind, n: u64) {
        if n == 0 {
            return;
        }
        match kind {
            Kind::Dropped => self.dropped.increment(n),
            Kind::Refused => self.refused.increment(n),
            // Counted in the unlabelled herald_webhook_dead_lettered_total by the worker.
            Kind::DeadLettered => {}
            // Counted by reason in `note_pruned`.
            Kind::Pruned => {}
        }
        self.window[kind as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Counts dead letters pruned by the count cap (`by_age` false) or the age limit.
    pub(crate) fn note_pruned(&self, n: u64, by_age: bool) {
        if n == 0 {
            return;
        }
        if by_age {
            self.pruned_age.increment(n);
        } else {
            self.pruned_count.increment(n);
        }
        self.note(Kind::Pruned, n);
    }

    /// What was counted since the last call (kind, count, the warning line), and resets the counts.
    pub(crate) fn report(&self) -> Vec<(Kind, u64, String)> {
        KINDS
            .iter()
            .filter_map(|&k| {
                let n = self.window[k as usize].swap(0, Ordering::Relaxed);
                (n > 0).then(|| (k, n, k.sentence(n, &self.app_id)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_aggregates_counts_per_kind_and_resets() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let a = PerApp::new("app-id", &recorder);
        for _ in 0..1000 {
            a.note(Kind::DeadLettered, 1);
        }
        a.note(Kind::Dropped, 5);
        a.note_pruned(2, true);
        let lines: Vec<String> = a.report().into_iter().map(|(_, _, line)| line).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].starts_with("5 webhook events dropped for app app-id in the last 10 s"), "{lines:?}");
        assert!(lines[1].starts_with("1000 webhook deliveries dead-lettered for app app-id"), "{lines:?}");
        assert!(lines[2].starts_with("2 webhook dead letters pruned"), "{lines:?}");
        assert!(a.report().is_empty());
        let text = recorder.handle().render();
        assert!(text.contains(r#"herald_webhook_events_dropped_total{app_id="app-id"} 5"#), "{text}");
        assert!(text.contains(r#"herald_webhook_dead_letters_pruned_total{app_id="app-id",reason="age"} 2"#), "{text}");
    }
}
