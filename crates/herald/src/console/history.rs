//! The last hour of each app, for the console's charts: every [`INTERVAL`] the sampler
//! ([`run`]) records, per app, this node's connections and the messages counted for the app's
//! usage since the previous sample (`Usage::messages_today`: cluster-wide in a cluster, as of
//! this node's last usage flush).
//!
//! Bounded: [`SAMPLES`] samples (one hour) per app, [`MAX_APPS`] apps (in id order; apps
//! beyond are not charted), apps no longer served are forgotten at the next sample.

use std::collections::{HashMap, VecDeque};
use std::sync::Weak;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::server::ServerState;

/// Time between samples.
pub(crate) const INTERVAL: Duration = Duration::from_secs(10);
/// Samples kept per app: one hour.
pub(crate) const SAMPLES: usize = 360;
/// Apps charted at most.
pub(crate) const MAX_APPS: usize = 1000;

/// One sample of one app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Sample {
    /// Unix ms when it was taken.
    pub t: u64,
    pub connections: u64,
    /// Messages counted since the previous sample.
    pub messages: u64,
}

/// One app's samples and the running count they are the differences of.
#[derive(Default)]
struct Series {
    samples: VecDeque<Sample>,
    /// `messages_today` at the previous sample.
    last_total: Option<u64>,
}

/// Every charted app's series. A parking_lot mutex taken once per sample (by the sampler) and
/// per history request; never held across an await.
#[derive(Default)]
pub(crate) struct History(Mutex<HashMap<String, Series>>);

impl History {
    /// Records one sample: `(app id, connections, messages today)` of each app served now.
    pub(crate) fn record(&self, t: u64, apps: &[(String, u64, u64)]) {
        let mut map = self.0.lock();
        map.retain(|id, _| apps.iter().any(|(a, _, _)| a == id));
        for (id, connections, total) in apps.iter().take(MAX_APPS) {
            let series = map.entry(id.clone()).or_default();
            // A total lower than the last one: a new UTC day began (the count restarted).
            let messages = match series.last_total {
                Some(last) if *total >= last => total - last,
                Some(_) => *total,
                None => 0,
            };
            series.last_total = Some(*total);
            if series.samples.len() == SAMPLES {
                series.samples.pop_front();
            }
            series.samples.push_back(Sample { t, connections: *connections, messages });
        }
    }

    /// `app_id`'s samples, oldest first.
    pub(crate) fn samples(&self, app_id: &str) -> Vec<Sample> {
        self.0.lock().get(app_id).map(|s| s.samples.iter().copied().collect()).unwrap_or_default()
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Takes one sample now, then one every [`INTERVAL`], until `stop` (or the server is gone).
pub(crate) async fn run(state: Weak<ServerState>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let Some(state) = state.upgrade() else { return };
        let Some(console) = &state.console else { return };
        let mut ids = state.hub.apps().ids();
        ids.sort();
        ids.truncate(MAX_APPS);
        // Only the namespaces that exist: an app nobody used has none, and gets none from this.
        let namespaces: HashMap<String, _> = state.hub.namespaces().into_iter().collect();
        let apps: Vec<(String, u64, u64)> = ids
            .into_iter()
            .map(|id| {
                let ns = namespaces.get(&id).map(|ns| &**ns);
                let total = state.usage.messages_today(&id, ns);
                (id, ns.map_or(0, |ns| ns.connection_count() as u64), total)
            })
            .collect();
        console.history.record(now_ms(), &apps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_differences_bounded_to_an_hour_and_gone_apps_are_forgotten() {
        let h = History::default();
        h.record(1, &[("a".into(), 2, 10), ("b".into(), 0, 0)]);
        h.record(2, &[("a".into(), 3, 15), ("b".into(), 0, 0)]);
        h.record(3, &[("a".into(), 3, 4)]);
        let a = h.samples("a");
        let messages: Vec<u64> = a.iter().map(|s| s.messages).collect();
        assert_eq!(messages, [0, 5, 4], "first sample 0, then the increase, a new day restarts");
        assert_eq!(a[1], Sample { t: 2, connections: 3, messages: 5 });
        assert!(h.samples("b").is_empty(), "b is no longer served");
        for t in 0..SAMPLES as u64 + 20 {
            h.record(t, &[("a".into(), 1, 100 + t)]);
        }
        assert_eq!(h.samples("a").len(), SAMPLES);
    }
}
