//! Message accounting per app and per UTC day, daily quotas, the API rate limit, and the
//! numbers the usage API shows (docs/OPERATIONS.md, "Usage and quotas").
//!
//! What counts as a message (as hosted Pusher counts them): every HTTP API request once its
//! app is known, whatever its status (`Usage::count_request`); every message delivered to a
//! connection (counted by the core in `Namespace::deliver`, one atomic add per fan-out, and
//! taken with `Namespace::take_delivered`); every webhook request sent ([`Requests::count`]
//! from the webhook worker, per attempt).
//!
//! The flusher ([`run`]) wakes every second, takes those counts and adds them to the app's
//! day: in memory and, on a single node, in `data_dir/usage.json` (written atomically; only
//! once some app has `max_messages_per_day` or the file exists, so a node without quotas
//! writes nothing); in a cluster, in Redis (`shared.rs`), which answers the cluster-wide total.
//! It then sets each namespace's over-quota flag (client events read it) and reports quota
//! crossings to the [`QuotaObserver`]. HTTP publishes check [`Usage::over_quota`], which adds
//! this node's not-yet-flushed counts, so a single node stops at its own count (give or take
//! the publishes racing a flush: the counts taken and not yet added to the day, microseconds on
//! a single node, a Redis round trip in a cluster).

mod day;
mod rate;
pub(crate) mod shared;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use herald_core::app::App;
use herald_core::hub::Hub;
use herald_core::namespace::Namespace;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub(crate) use day::date;
use day::{AppDay, Reached};
use rate::Buckets;
use shared::Shared;

use crate::log_limit::LogLimit;
use crate::server::ServerState;

/// Which limit an app crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuotaKind {
    /// `max_messages_per_day`, against today's count (cluster-wide in a cluster).
    Messages,
    /// `max_connections`, against this node's connections (the limit is per node).
    Connections,
}

/// How far it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuotaLevel {
    /// 80 % of the limit.
    Warning80,
    /// 100 % of the limit.
    Exceeded100,
}

/// Told when an app crosses 80 % and 100 % of a limit: once per level, kind and UTC day on
/// each node (a cluster-wide once-per-day de-duplication is the observer's job). Called from
/// the flusher task: implementations must not block (queue the alert and return).
pub(crate) trait QuotaObserver: Send + Sync {
    /// `app_id` reached `level` of `kind`: `used` of `limit`.
    fn crossed(&self, app_id: &str, kind: QuotaKind, level: QuotaLevel, used: u64, limit: u64);
}

/// Why an API request was refused by a quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Over `max_api_requests_per_second`; retry after this many whole seconds.
    Rate { retry_after: u64 },
}

/// The usage API's answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Report {
    pub date: String,
    pub messages: u64,
    pub max_messages_per_day: Option<u64>,
    pub connections: u64,
    pub peak_connections: u64,
    pub max_connections: Option<u64>,
    pub hourly: Vec<u64>,
}

/// The file a single node keeps its counts in.
#[derive(Debug, Default, Serialize, Deserialize)]
struct UsageFile {
    apps: HashMap<String, AppDay>,
}

/// Messages that are not deliveries (API requests, webhook requests sent) counted since the
/// last flush, by app id. Shared with the webhook workers. Sharded map: a request takes one
/// shard's lock for one add.
#[derive(Debug, Default)]
pub(crate) struct Requests(DashMap<String, u64>);

impl Requests {
    /// Counts one request of `app_id`.
    pub(crate) fn count(&self, app_id: &str) {
        match self.0.get_mut(app_id) {
            Some(mut n) => *n += 1,
            None => *self.0.entry(app_id.to_owned()).or_default() += 1,
        }
    }

    /// Counted and not flushed yet.
    fn pending(&self, app_id: &str) -> u64 {
        self.0.get(app_id).map_or(0, |n| *n)
    }

    /// Takes one app's count, resetting it.
    fn take_one(&self, app_id: &str) -> u64 {
        self.0.remove(app_id).map_or(0, |(_, n)| n)
    }

    /// Adds `n` to `app_id`'s count (a count taken and not written).
    fn add(&self, app_id: &str, n: u64) {
        if n > 0 {
            *self.0.entry(app_id.to_owned()).or_default() += n;
        }
    }

    /// Takes every app's count, resetting them.
    fn take(&self) -> Vec<(String, u64)> {
        let ids: Vec<String> = self.0.iter().map(|e| e.key().clone()).collect();
        ids.into_iter().filter_map(|id| self.0.remove(&id)).collect()
    }
}

/// The node's accounting (one per server, in `ServerState`).
pub(crate) struct Usage {
    /// API and webhook requests counted since the last flush.
    pub(crate) requests: Arc<Requests>,
    /// Today's counts per app as of the last flush (cluster-wide in a cluster). parking_lot
    /// mutex, held for map operations only (flusher, usage API, publish quota check); never
    /// across an await.
    days: Mutex<HashMap<String, AppDay>>,
    /// `data_dir/usage.json` on a single node; `None` in a cluster (Redis holds the counts).
    file: Option<PathBuf>,
    /// The cluster's shared counts; `None` on a single node.
    shared: Option<Shared>,
    /// `max_api_requests_per_second`.
    buckets: Buckets,
    /// At most one warning per 10 s about Redis errors of the flusher.
    redis_errors: LogLimit,
}

impl Usage {
    /// A single node persisting in `data_dir` (counts found there are loaded), or a cluster
    /// node sharing its counts through `shared`.
    pub(crate) fn new(data_dir: &std::path::Path, shared: Option<Shared>) -> Self {
        let file = shared.is_none().then(|| data_dir.join("usage.json"));
        let days = file.as_deref().map(load).unwrap_or_default();
        Usage {
            requests: Arc::new(Requests::default()),
            days: Mutex::new(days),
            file,
            shared,
            buckets: Buckets::default(),
            redis_errors: LogLimit::new(Duration::from_secs(10)),
        }
    }

    /// Counts one message of `app_id` that is not a delivery: an HTTP API request, a webhook
    /// request sent.
    pub(crate) fn count_request(&self, app_id: &str) {
        self.requests.count(app_id);
    }

    /// Applies `max_api_requests_per_second` to one authenticated API request of `app`.
    pub(crate) fn admit_request(&self, app: &App) -> Result<(), Refused> {
        let Some(rate) = app.limits.max_api_requests_per_second else { return Ok(()) };
        self.buckets
            .take(&app.id, rate, Instant::now())
            .map_err(|wait| Refused::Rate { retry_after: wait.as_secs_f64().ceil().max(1.0) as u64 })
    }

    /// Whether `app` has used its `max_messages_per_day` today: the last flushed count plus
    /// what this node counted since (`ns` is the app's namespace).
    pub(crate) fn over_quota(&self, app: &App, ns: &Namespace) -> bool {
        let Some(limit) = app.limits.max_messages_per_day else { return false };
        let (today, _) = day::now();
        let flushed = self.days.lock().get(&app.id).filter(|d| d.day == today).map_or(0, |d| d.messages);
        let pending = self.requests.pending(&app.id);
        flushed + pending + ns.pending_delivered() >= limit
    }

    /// [`Usage::over_quota`], made exact in a cluster: for an app with `max_messages_per_day`
    /// each API publish first writes the app's counts of this node to Redis and reads the
    /// cluster-wide total back (one round trip per publish, only for apps with a quota; a
    /// node's own view may be a second old, and nodes publishing at once would each run past
    /// the quota on it). Other nodes' deliveries still show up at their next flush or publish.
    /// A Redis error falls back to the estimate.
    pub(crate) async fn over_quota_now(&self, hub: &Hub, app: &App, ns: &Namespace) -> bool {
        let Some(limit) = app.limits.max_messages_per_day else { return false };
        let Some(shared) = &self.shared else { return self.over_quota(app, ns) };
        let (today, hour) = day::now();
        let flushed = self.days.lock().get(&app.id).filter(|d| d.day == today).map_or(0, |d| d.messages);
        let estimate = flushed + self.requests.pending(&app.id) + ns.pending_delivered();
        if estimate >= limit {
            return true;
        }
        let n = self.requests.take_one(&app.id) + ns.take_delivered();
        match shared.flush(&app.id, &date(today), hour, n, hub.node(), ns.connection_count() as u64).await {
            Ok(f) => {
                if n > 0 {
                    hub.metrics.messages(&app.id, n);
                }
                let mut days = self.days.lock();
                let d = days.entry(app.id.clone()).or_default();
                d.roll(today);
                d.messages = d.messages.max(f.messages);
                d.messages >= limit
            }
            Err(_) => {
                // not written: counted again at the next flush
                self.requests.add(&app.id, n);
                estimate >= limit
            }
        }
    }

    /// `app_id`'s messages today without asking Redis: the last flushed count (cluster-wide
    /// in a cluster, as of this node's last flush) plus what this node counted since. Cheap
    /// enough for the console's overview and its 10 s history sampler. `ns`: the app's
    /// namespace on this node, if it has one.
    pub(crate) fn messages_today(&self, app_id: &str, ns: Option<&Namespace>) -> u64 {
        let (today, _) = day::now();
        let flushed = self.days.lock().get(app_id).filter(|d| d.day == today).map_or(0, |d| d.messages);
        flushed + self.requests.pending(app_id) + ns.map_or(0, Namespace::pending_delivered)
    }

    /// The usage API's numbers for `app` (`ns`: its namespace on this node).
    pub(crate) async fn report(&self, app: &App, ns: &Namespace) -> Result<Report, shared::Error> {
        let (today, hour) = day::now();
        let limits = &app.limits;
        let pending = self.requests.pending(&app.id) + ns.pending_delivered();
        let mut report = Report {
            date: date(today),
            messages: 0,
            max_messages_per_day: limits.max_messages_per_day,
            connections: ns.connection_count() as u64,
            peak_connections: 0,
            max_connections: limits.max_connections,
            hourly: vec![0; 24],
        };
        if let Some(shared) = &self.shared {
            let read = shared.read(&app.id, &report.date, hour).await?;
            report.messages = read.messages + pending;
            report.connections = read.connections;
            report.peak_connections = read.peak_connections.max(read.connections);
            report.hourly = read.hourly;
            if let Some(last) = report.hourly.last_mut() {
                *last += pending;
            }
            return Ok(report);
        }
        let days = self.days.lock();
        if let Some(d) = days.get(&app.id).filter(|d| d.day == today) {
            report.messages = d.messages;
            report.peak_connections = d.peak_connections;
        }
        if let Some(d) = days.get(&app.id) {
            report.hourly = d.last_24(hour);
        }
        report.messages += pending;
        if let Some(last) = report.hourly.last_mut() {
            *last += pending;
        }
        report.peak_connections = report.peak_connections.max(report.connections);
        Ok(report)
    }

    /// One flush: see the module doc.
    async fn flush(&self, state: &ServerState) {
        let (today, hour) = day::now();
        let hub = &state.hub;
        let mut counts: HashMap<String, (u64, Option<Arc<Namespace>>)> = HashMap::new();
        for (id, ns) in hub.namespaces() {
            let n = ns.take_delivered();
            counts.insert(id, (n, Some(ns)));
        }
        for (id, n) in self.requests.take() {
            counts.entry(id).or_default().0 += n;
        }
        let mut changed = false;
        for (id, (n, ns)) in counts {
            let Some(app) = hub.apps().by_id(&id) else { continue };
            if n > 0 {
                hub.metrics.messages(&id, n);
            }
            let local_connections = ns.as_ref().map_or(0, |ns| ns.connection_count() as u64);
            let shared_view = match &self.shared {
                Some(shared) => match shared.flush(&id, &date(today), hour, n, hub.node(), local_connections).await {
                    Ok(f) => Some(f),
                    Err(e) => {
                        if let Some(held_back) = self.redis_errors.admit() {
                            tracing::warn!(
                                app_id = %id,
                                "usage not written to Redis ({n} messages counted on this node only; \
                                 {held_back} more such errors in the last 10 s): {e}"
                            );
                        }
                        None
                    }
                },
                None => None,
            };
            let (messages, crossed) = {
                let mut days = self.days.lock();
                let d = days.entry(id.clone()).or_default();
                d.roll(today);
                match shared_view {
                    Some(f) => {
                        d.messages = d.messages.max(f.messages);
                        d.peak_connections = d.peak_connections.max(f.peak_connections);
                    }
                    None if self.shared.is_some() => d.messages += n,
                    None => {
                        d.add(hour, n);
                        d.peak_connections = d.peak_connections.max(local_connections);
                    }
                }
                changed |= n > 0;
                let limits = &app.limits;
                let mut crossed = Vec::new();
                let m = AppDay::crossed(&mut d.messages_reported, d.messages, limits.max_messages_per_day);
                crossed
                    .extend(m.into_iter().map(|l| (QuotaKind::Messages, l, d.messages, limits.max_messages_per_day)));
                let c = AppDay::crossed(&mut d.connections_reported, local_connections, limits.max_connections);
                crossed.extend(
                    c.into_iter().map(|l| (QuotaKind::Connections, l, local_connections, limits.max_connections)),
                );
                (d.messages, crossed)
            };
            if let Some(ns) = &ns {
                ns.set_over_message_quota(app.limits.max_messages_per_day.is_some_and(|l| messages >= l));
            }
            if let Some(observer) = state.quota_observer.get() {
                for (kind, level, used, limit) in crossed {
                    let level =
                        if level == Reached::Exceeded { QuotaLevel::Exceeded100 } else { QuotaLevel::Warning80 };
                    observer.crossed(&id, kind, level, used, limit.unwrap_or(u64::MAX));
                }
            }
        }
        if changed {
            self.save(state);
        }
    }

    /// Writes `usage.json` (single node) once some app has a message quota or the file exists.
    fn save(&self, state: &ServerState) {
        let Some(path) = &self.file else { return };
        let quota = state
            .hub
            .apps()
            .ids()
            .iter()
            .any(|id| state.hub.apps().by_id(id).is_some_and(|a| a.limits.max_messages_per_day.is_some()));
        if !quota && !path.exists() {
            return;
        }
        let file = UsageFile { apps: self.days.lock().clone() };
        if let Err(e) = write_atomically(path, &file) {
            tracing::warn!("usage counts not saved to {}: {e}", path.display());
        }
    }
}

/// The counts saved by a previous run (none when the file is missing or unreadable).
fn load(path: &std::path::Path) -> HashMap<String, AppDay> {
    let Ok(bytes) = std::fs::read(path) else { return HashMap::new() };
    match serde_json::from_slice::<UsageFile>(&bytes) {
        Ok(file) => file.apps,
        Err(e) => {
            tracing::warn!("usage counts in {} ignored (unreadable: {e})", path.display());
            HashMap::new()
        }
    }
}

/// Writes `file` to a temporary file next to `path`, then renames it over `path`.
fn write_atomically(path: &std::path::Path, file: &UsageFile) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(file).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests;

/// The flusher: every second until `stop`, then once more (shutdown keeps the last second).
pub(crate) async fn run(state: Weak<ServerState>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopped = tokio::select! {
            _ = tick.tick() => false,
            () = stop.cancelled() => true,
        };
        let Some(state) = state.upgrade() else { return };
        state.usage.flush(&state).await;
        if stopped {
            return;
        }
    }
}
