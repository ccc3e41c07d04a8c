//! Alerts to operators: Slack incoming webhooks and a generic JSON webhook (`[[alerts]]`,
//! docs/OPERATIONS.md "Alerts").
//!
//! This module owns [`Alerts`], the one place every part of the server reports an operator-
//! worthy event to: the quota accounting ([`Alerts::quota`]), the webhooks (dead letters,
//! aggregated per app every 10 s in `webhooks/housekeeping.rs`), the cluster adapter (Redis
//! lost and reached again, a dead node reaped: `cluster/liveness.rs`) and the config reload
//! (`reload.rs`). Files:
//! * `kind.rs`: [`AlertKind`] (the names), [`Severity`], [`Alert`];
//! * `payload.rs`: the `slack` and `json` bodies;
//! * `delivery.rs`: one bounded queue and one task per target, retries, counters;
//! * `dedup.rs`: once per day per key, per node or (in a cluster) per cluster through Redis.
//!
//! [`Alerts::emit`] never blocks and never fails: it formats the body for each target whose
//! `events` include the kind and `try_send`s it to that target's queue; a full queue drops
//! the alert (`herald_alerts_dropped_total`). Alerts are never persisted: what is queued or
//! being retried when the node stops is lost.
//!
//! Who sends what, once: a quota alert once per app, quota and level per 24 h per cluster
//! (`dedup.rs`); `node_lost` by the one node that reaped the dead node (the reap lock);
//! `redis_down` / `redis_restored` by every node that sees it (each node's own connection);
//! `webhook_dead_letter` by the node whose deliveries failed; `config_reload_failed` by the
//! node that was reloaded.

mod dedup;
mod delivery;
mod kind;
mod payload;

use std::sync::Arc;

use herald_core::metrics::Metrics;
use metrics::Counter;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use kind::{Alert, AlertKind, AlertKinds, Severity};
pub use payload::AlertFormat;

pub(crate) use dedup::ClusterKeys;
use dedup::Dedup;
use delivery::{DeliveryMetrics, Job, Task};
use payload::Origin;

/// One `[[alerts]]` table, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertTarget {
    /// `http://` or `https://`.
    pub url: String,
    pub format: AlertFormat,
    /// The kinds this target receives (`events`; all when not given).
    pub events: AlertKinds,
}

/// Which quota an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKind {
    Messages,
    Connections,
}

impl QuotaKind {
    pub fn name(self) -> &'static str {
        match self {
            QuotaKind::Messages => "messages",
            QuotaKind::Connections => "connections",
        }
    }
}

/// How far an app is into a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaLevel {
    /// Past the warning share (`quota_warning`).
    Warning,
    /// At or over the limit (`quota_exceeded`).
    Exceeded,
}

impl QuotaLevel {
    fn kind(self) -> AlertKind {
        match self {
            QuotaLevel::Warning => AlertKind::QuotaWarning,
            QuotaLevel::Exceeded => AlertKind::QuotaExceeded,
        }
    }
}

/// One target's queue and filter.
struct Route {
    format: AlertFormat,
    events: AlertKinds,
    queue: mpsc::Sender<Job>,
}

/// The alert targets of this node. Shared (`Arc`) by the server state, the webhooks and the
/// cluster adapter; everything in it is immutable, a channel, a counter or the de-duplication
/// state (its own lock, see `dedup.rs`).
pub struct Alerts {
    routes: Vec<Route>,
    /// `host (node id)`, the payloads' `node`.
    node: String,
    dedup: Dedup,
    dropped: Counter,
    /// Ends the delivery tasks (`shutdown`).
    stop: CancellationToken,
    /// The delivery tasks and the once-per-cluster checks in flight.
    tasks: TaskTracker,
}

impl Alerts {
    /// Starts one delivery task per target. `node_id` is the hub's node id.
    pub(crate) fn start(targets: &[AlertTarget], metrics: &Metrics, node_id: u32) -> Result<Arc<Alerts>, String> {
        let delivery_metrics = Arc::new(DeliveryMetrics {
            sent: AlertKind::ALL
                .iter()
                .map(|k| metrics.labelled_counter("herald_alerts_sent_total", "event", k.name()))
                .collect(),
            failed: metrics.counter("herald_alerts_failed_total"),
        });
        let (stop, tasks) = (CancellationToken::new(), TaskTracker::new());
        let client = if targets.is_empty() { None } else { Some(delivery::client()?) };
        let mut routes = Vec::with_capacity(targets.len());
        for (i, target) in targets.iter().enumerate() {
            let (queue, jobs) = delivery::queue();
            let task = Task {
                name: format!("alerts[{i}]"),
                url: target.url.clone(),
                client: client.clone().expect("built when there are targets"),
                backoff: delivery::backoff(),
                metrics: delivery_metrics.clone(),
            };
            tasks.spawn(task.run(jobs, stop.clone()));
            routes.push(Route { format: target.format, events: target.events, queue });
        }
        Ok(Arc::new(Alerts {
            routes,
            node: format!("{} (node {node_id})", host_name()),
            dedup: Dedup::default(),
            dropped: metrics.counter("herald_alerts_dropped_total"),
            stop,
            tasks,
        }))
    }

    /// In a cluster: de-duplicate through this Redis (see `dedup.rs`). Called once, at start-up.
    pub(crate) fn use_cluster(&self, keys: ClusterKeys) {
        self.dedup.use_cluster(keys);
    }

    /// Whether any target would receive an alert of `kind` (callers skip building one otherwise).
    pub fn wants(&self, kind: AlertKind) -> bool {
        self.routes.iter().any(|r| r.events.contains(kind))
    }

    /// Queues `alert` for every target that takes its kind. Never blocks: a full queue drops
    /// it (`herald_alerts_dropped_total`).
    pub fn emit(&self, alert: Alert) {
        if !self.wants(alert.kind) {
            return;
        }
        let origin = Origin::now(&self.node);
        for route in self.routes.iter().filter(|r| r.events.contains(alert.kind)) {
            let job = Job { kind: alert.kind, body: payload::body(route.format, &alert, &origin) };
            if route.queue.try_send(job).is_err() {
                self.dropped.increment(1);
            }
        }
    }

    /// An app reached `level` of its `kind` quota (`used` of `limit`). Sends `quota_warning` or
    /// `quota_exceeded` at most once per app, kind and level per 24 hours: per cluster in a
    /// cluster (the node whose Redis `SET NX` wins sends), per node otherwise (a restart
    /// forgets, so it may repeat one). Never blocks: the cluster check runs in a task.
    pub fn quota(self: &Arc<Self>, app_id: &str, kind: QuotaKind, level: QuotaLevel, used: u64, limit: u64) {
        let alert_kind = level.kind();
        if !self.wants(alert_kind) {
            return;
        }
        let key = format!("quota:{app_id}:{}:{}", kind.name(), alert_kind.name());
        if !self.dedup.first_here(&key) {
            return;
        }
        let message = match level {
            QuotaLevel::Warning => format!("app {app_id} has used {used} of its {limit} {} quota", kind.name()),
            QuotaLevel::Exceeded => format!("app {app_id} reached its {} quota ({used} of {limit})", kind.name()),
        };
        let alert = Alert::new(alert_kind, message)
            .app(app_id)
            .detail("quota", kind.name())
            .detail("used", used)
            .detail("limit", limit);
        if !self.dedup.clustered() {
            self.emit(alert);
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.emit(alert);
            return;
        };
        let this = self.clone();
        let stop = self.stop.clone();
        let check = async move {
            if this.dedup.first_in_cluster(&key).await {
                this.emit(alert);
            }
        };
        self.tasks.spawn_on(
            async move {
                stop.run_until_cancelled(check).await;
            },
            &runtime,
        );
    }

    /// Ends the delivery tasks; what is still queued or being retried is dropped (alerts are
    /// never persisted). Waits at most a second.
    pub(crate) async fn shutdown(&self) {
        self.stop.cancel();
        self.tasks.close();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.tasks.wait()).await;
    }
}

/// This machine's host name (`"unknown"` if it has none).
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match (rc, std::str::from_utf8(&buf[..end])) {
        (0, Ok(name)) if !name.is_empty() => name.to_owned(),
        _ => "unknown".to_owned(),
    }
}

/// The usage accounting's quota crossings as `quota_warning` / `quota_exceeded` alerts (the
/// accounting reports each crossing once per node and day; [`Alerts::quota`] keeps one per
/// cluster and 24 hours).
pub(crate) struct QuotaAlerts(pub(crate) Arc<Alerts>);

impl crate::usage::QuotaObserver for QuotaAlerts {
    fn crossed(
        &self,
        app_id: &str,
        kind: crate::usage::QuotaKind,
        level: crate::usage::QuotaLevel,
        used: u64,
        limit: u64,
    ) {
        let kind = match kind {
            crate::usage::QuotaKind::Messages => QuotaKind::Messages,
            crate::usage::QuotaKind::Connections => QuotaKind::Connections,
        };
        let level = match level {
            crate::usage::QuotaLevel::Warning80 => QuotaLevel::Warning,
            crate::usage::QuotaLevel::Exceeded100 => QuotaLevel::Exceeded,
        };
        self.0.quota(app_id, kind, level, used, limit);
    }
}
