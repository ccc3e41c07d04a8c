//! Webhooks (PROTOCOL.md 11): herald → the customer's HTTP endpoints. See docs/WEBHOOKS.md.
//!
//! The path of an event:
//! 1. the core calls [`WebhookSink::emit`] (under a channel lock, on the socket hot path): a
//!    non-blocking `try_send` into the app's own bounded queue (`queues.rs`); a full queue
//!    drops the event for that app only and counts it (`herald_webhook_events_dropped_total
//!    {app_id}`) — sending webhooks never slows sockets, and one app cannot drop another's;
//! 2. the dispatcher task (`dispatcher.rs`) drains the app queues round-robin, de-duplicates
//!    cache misses (`dedup.rs`), holds removals back (`debounce.rs`), routes to targets,
//!    batches (`batch.rs`) and writes each delivery to the durable outbox (`store/`, redb in
//!    `data_dir`) before anything is sent, up to `webhook_max_pending` per app;
//! 3. one worker per target (`worker.rs`) POSTs its deliveries in order (`sender.rs`),
//!    retrying with a jittered exponential backoff (`backoff.rs`); what fails for the whole
//!    retry window goes to the dead letters (capped per app by count and age), listed a page
//!    at a time and re-sent through `admin.rs` (HTTP) and `cli.rs` (`herald dead-letters`);
//! 4. the housekeeping task (`housekeeping.rs`) prunes aged dead letters, dead-letters the
//!    outbox entries of removed targets, and writes the aggregated per-app warnings
//!    (`per_app.rs`).
//!
//! Which apps have which targets is a routing table (`routes.rs`) that
//! [`Webhooks::set_apps`] replaces at run time (a configuration reload, apps that change in
//! an app store): every step reads the current one without a lock, per-app state is keyed by
//! app id, and the outbox is opened only once some app has targets.
//!
//! [`Webhooks`] wires these together and runs the shutdown flush. `fuzz.rs` is the body of the
//! `webhook_payload` fuzz target (`crate::fuzzing`), which drives step 2's pure stages.

pub mod admin;
pub(crate) mod backoff;
mod batch;
pub mod cli;
pub mod config;
mod debounce;
mod dedup;
mod dispatcher;
#[doc(hidden)]
pub(crate) mod fuzz;
mod housekeeping;
mod payload;
mod per_app;
mod queues;
mod routes;
mod sender;
mod store;
mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use herald_core::app::{App, AppStore, StaticAppStore};
use herald_core::events::{ChannelEvent, EventKind, EventSink};
use metrics::{Counter, Gauge, Key, Level, Metadata, Recorder};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::backoff::Backoff;
use self::config::{AppWebhooks, WebhookSettings};
use self::per_app::{Kind, PerApp};
use self::routes::{AppState, Table};
use self::sender::Sender;
use self::store::{DeliveryStore, Page, StoreError};
use self::worker::{WorkerEnv, Workers};
use crate::config::Config;

/// Why webhooks could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The outbox could not be created or opened: names `data_dir`.
    #[error("data_dir {path}: {source}")]
    DataDir { path: String, source: StoreError },
    #[error("webhook retry schedule: {0}")]
    Backoff(#[from] backoff::BackoffError),
    #[error("webhook HTTP client: {0}")]
    Sender(#[from] sender::SendError),
}

pub(crate) static METADATA: Metadata<'static> = Metadata::new("herald::webhooks", Level::INFO, Some(module_path!()));

/// Webhook metric handles (registered once against the server's recorder).
#[derive(Clone)]
pub(crate) struct WebhookMetrics {
    /// Deliveries written to the outbox.
    pub queued: Counter,
    /// Deliveries lost because the outbox could not be written.
    pub store_failed: Counter,
    pub delivered: Counter,
    pub failed_attempts: Counter,
    pub dead_lettered: Counter,
    pub outbox_depth: Gauge,
    /// Entries in the cache_miss de-duplication tables (all apps).
    pub cache_miss_dedup_entries: Gauge,
}

impl WebhookMetrics {
    fn new(r: &dyn Recorder) -> Self {
        let c = |n: &'static str| r.register_counter(&Key::from_static_name(n), &METADATA);
        let g = |n: &'static str| r.register_gauge(&Key::from_static_name(n), &METADATA);
        WebhookMetrics {
            queued: c("herald_webhook_deliveries_queued_total"),
            store_failed: c("herald_webhook_deliveries_lost_total"),
            delivered: c("herald_webhook_deliveries_delivered_total"),
            failed_attempts: c("herald_webhook_failed_attempts_total"),
            dead_lettered: c("herald_webhook_dead_lettered_total"),
            outbox_depth: g("herald_webhook_outbox_depth"),
            cache_miss_dedup_entries: g("herald_webhook_cache_miss_dedup_entries"),
        }
    }
}

/// What the webhook tasks share: the routing table, the outbox, the app credentials, the
/// metrics and the per-app counters.
pub(crate) struct Shared {
    /// The per-app configuration (`routes.rs`). Read lock-free by the sink on every channel
    /// event, by the dispatcher once per pass, by the workers once per attempt; replaced as a
    /// whole by `Webhooks::set_apps` (`ArcSwap::store`), never modified in place.
    pub routes: ArcSwap<Table>,
    /// The outbox, opened the first time some app has targets (at start-up or by `set_apps`)
    /// and kept until the end. A `OnceLock`: set once under `Webhooks::workers`, then read
    /// without a lock.
    pub(in crate::webhooks) store: OnceLock<Arc<DeliveryStore>>,
    /// Where the app's key and secret are looked up for each attempt. Read lock-free;
    /// replaced by `Webhooks::use_app_store` (once, at start-up).
    apps: ArcSwap<Arc<dyn AppStore>>,
    pub settings: WebhookSettings,
    pub metrics: WebhookMetrics,
    /// Where each request sent is counted as a message of its app (usage accounting); set
    /// once at start-up by `Webhooks::count_requests_in`.
    pub requests: OnceLock<Arc<crate::usage::Requests>>,
    /// Registers the per-app metrics of apps that appear at run time.
    recorder: Arc<dyn Recorder + Send + Sync>,
    /// Per app id: its live state (weak: held by the tables and routed deliveries), its
    /// queue and its counters. A std mutex held only for map operations, by `set_apps` (to
    /// reuse a live state, or at least the queue, so an app keeps the order of its queued
    /// events across a change) and by the housekeeping report every 10 s (which forgets apps
    /// whose state is gone and whose queue is empty). Never taken on the event path.
    states: Mutex<HashMap<String, Slot>>,
    /// Where the housekeeping report sends `webhook_dead_letter` alerts. Set once at start-up
    /// (`Webhooks::use_alerts`), read without a lock.
    pub alerts: OnceLock<Arc<crate::alerts::Alerts>>,
    /// The debug console's tap: the workers record deliveries, failures and dead letters in
    /// it. Set once at start-up (`Webhooks::use_tap`), read without a lock.
    pub tap: OnceLock<Arc<crate::console::tap::Tap>>,
    /// Per target key: the delivery its worker is retrying (the console shows its attempts and
    /// next attempt). A std mutex held for one map operation by the worker after a failed
    /// attempt and after each delivery, and by the console's listing; never across an await.
    retries: Mutex<HashMap<String, Retry>>,
}

/// The head delivery of a target being retried.
#[derive(Debug, Clone, Copy)]
struct Retry {
    seq: u64,
    attempts: u32,
    next_attempt_ms: u64,
}

/// A pending delivery as the console lists it.
#[derive(Debug, Clone)]
pub(crate) struct PendingDelivery {
    /// Its place in the target's queue (the outbox sequence number).
    pub id: u64,
    pub url: String,
    /// The JSON body to POST.
    pub body: String,
    /// Failed attempts so far (0: not attempted yet, or attempted once and in flight).
    pub attempts: u32,
    /// Unix ms of the next attempt, while it waits for one.
    pub next_attempt_ms: Option<u64>,
}

/// An app's entry in `Shared::states`.
struct Slot {
    state: Weak<AppState>,
    /// The sending end of the app's queue: an app that loses its targets and gets new ones
    /// while events of its still wait in the queue gets the same queue back (they stay ahead).
    queue: mpsc::Sender<ChannelEvent>,
    per_app: Arc<PerApp>,
}

impl Shared {
    /// No apps with targets, no outbox; credentials from `config.apps`.
    fn new(config: &Config, recorder: Arc<dyn Recorder + Send + Sync>) -> Shared {
        let apps: Arc<dyn AppStore> = Arc::new(StaticAppStore::new(config.apps.clone()));
        Shared {
            routes: ArcSwap::from_pointee(Table::default()),
            store: OnceLock::new(),
            apps: ArcSwap::from_pointee(apps),
            settings: WebhookSettings::from_config(config),
            metrics: WebhookMetrics::new(recorder.as_ref()),
            requests: OnceLock::new(),
            recorder,
            states: Mutex::new(HashMap::new()),
            alerts: OnceLock::new(),
            tap: OnceLock::new(),
            retries: Mutex::new(HashMap::new()),
        }
    }

    /// The worker of `target` failed attempt `attempts` of delivery `seq` and tries again in
    /// `delay`.
    pub(crate) fn note_retry(&self, target: &str, seq: u64, attempts: u32, delay: Duration) {
        let next_attempt_ms = payload::now_ms().saturating_add(delay.as_millis() as u64);
        if let Ok(mut retries) = self.retries.lock() {
            retries.insert(target.to_owned(), Retry { seq, attempts, next_attempt_ms });
        }
    }

    /// The worker of `target` is done with its head delivery (delivered, dead-lettered, or
    /// stopped).
    pub(crate) fn clear_retry(&self, target: &str) {
        if let Ok(mut retries) = self.retries.lock() {
            retries.remove(target);
        }
    }

    /// The app `id` as the app store knows it now (its key and secret sign the request).
    pub(crate) fn app(&self, id: &str) -> Option<Arc<App>> {
        self.apps.load().by_id(id)
    }

    /// The counters of every app to report on; forgets the apps whose state is gone and
    /// whose queue is empty (this is their last report; dropping the slot's sender lets the
    /// dispatcher retire the queue).
    pub(crate) fn report_apps(&self) -> Vec<Arc<PerApp>> {
        let Ok(mut states) = self.states.lock() else { return Vec::new() };
        let out = states.values().map(|s| s.per_app.clone()).collect();
        states.retain(|_, s| s.state.strong_count() > 0 || s.queue.capacity() < s.queue.max_capacity());
        out
    }

    /// `app_id`'s live state; else a new one on the app's queue if it still has one (events
    /// queued before it lost its targets stay first), else on a new queue whose lane is
    /// handed to the dispatcher.
    fn state(&self, app_id: &str, lanes: &queues::LaneSender) -> Arc<AppState> {
        let id: Arc<str> = Arc::from(app_id);
        let Ok(mut states) = self.states.lock() else {
            // Poisoned: a panic elsewhere; a state of its own still works.
            let queue = self.new_queue(&id, lanes);
            return Arc::new(AppState::new(id, queue, Arc::new(PerApp::new(app_id, self.recorder.as_ref()))));
        };
        let (queue, per_app) = match states.get(app_id) {
            Some(slot) => {
                if let Some(state) = slot.state.upgrade() {
                    return state;
                }
                (slot.queue.clone(), slot.per_app.clone())
            }
            None => (self.new_queue(&id, lanes), Arc::new(PerApp::new(app_id, self.recorder.as_ref()))),
        };
        let state = Arc::new(AppState::new(id, queue.clone(), per_app.clone()));
        states.insert(app_id.to_owned(), Slot { state: Arc::downgrade(&state), queue, per_app });
        state
    }

    /// A new queue for `id`; its lane goes to the dispatcher.
    fn new_queue(&self, id: &Arc<str>, lanes: &queues::LaneSender) -> mpsc::Sender<ChannelEvent> {
        let (tx, lane) = queues::lane(id.clone(), self.settings.queue_size, self.settings.cache_miss_dedup_max);
        // Fails only once the dispatcher has ended (shutdown): events are then not taken anyway.
        let _ = lanes.send(lane);
        tx
    }
}

/// The core's [`EventSink`]: filters by what the app's targets want, then `try_send`s into
/// the app's queue. Both calls read the current routing table without a lock.
pub struct WebhookSink {
    shared: Arc<Shared>,
    /// Wakes the dispatcher.
    ready: Arc<Notify>,
}

impl EventSink for WebhookSink {
    fn wants(&self, app_id: &str, kind: EventKind) -> bool {
        self.shared.routes.load().get(app_id).is_some_and(|r| r.wanted.contains(kind))
    }

    fn emit(&self, app_id: &str, event: ChannelEvent) {
        let table = self.shared.routes.load();
        let Some(route) = table.get(app_id) else { return };
        if route.state.try_send(event) {
            self.ready.notify_one();
        } else {
            route.state.per_app.note(Kind::Dropped, 1);
        }
    }
}

/// The running webhook machinery of one server.
pub struct Webhooks {
    shared: Arc<Shared>,
    sink: Arc<WebhookSink>,
    /// Serialises `set_apps` (held for the whole call: opening the outbox, building and
    /// swapping the table, starting and stopping workers) and owns the worker registry. A std
    /// mutex: `set_apps` is synchronous; no other path takes it.
    workers: Mutex<Workers>,
    /// Hands the queues of apps new to webhooks to the dispatcher.
    lanes: queues::LaneSender,
    data_dir: PathBuf,
    sender: Sender,
    backoff: Backoff,
    /// The dispatcher task, ended by `stop_dispatcher` (it writes what it holds first).
    dispatcher: TaskTracker,
    stop_dispatcher: CancellationToken,
    /// One task per target and the housekeeping task, ended by `stop_workers` once the
    /// shutdown drain is over.
    tasks: TaskTracker,
    stop_workers: CancellationToken,
}

impl Webhooks {
    /// Starts the webhook machinery: the dispatcher, the housekeeping task, and one worker per
    /// target of `config.webhooks`. The outbox in `data_dir` is opened (and the directory
    /// created) only if some app has targets: otherwise nothing touches the disk until
    /// [`Webhooks::set_apps`] first gives an app targets. An unusable `data_dir` is an error
    /// here when some app already has targets.
    pub fn start(config: &Config, recorder: Arc<dyn Recorder + Send + Sync>) -> Result<Arc<Webhooks>, WebhookError> {
        let shared = Arc::new(Shared::new(config, recorder));
        if config.webhooks.values().any(|w| !w.targets.is_empty()) {
            let _ = shared.store.set(open_store(&config.data_dir, &shared.metrics)?);
        }
        // Everything that can fail before any task is spawned.
        let sender = Sender::new(shared.settings.timeout)?;
        let backoff = Backoff::webhooks(shared.settings.retry_initial, shared.settings.retry_max_elapsed)?;
        let (lanes, ready, inbox) = queues::inbox();
        let (stop_dispatcher, stop_workers) = (CancellationToken::new(), CancellationToken::new());
        let tasks = TaskTracker::new();
        let dispatcher = dispatcher::Dispatcher {
            debounce: debounce::Debouncer::new(shared.settings.removal_delay),
            batcher: batch::Batcher::new(shared.settings.batch_window, shared.settings.batch_max),
            shared: shared.clone(),
        };
        let dispatcher_task = TaskTracker::new();
        dispatcher_task.spawn(dispatcher.run(inbox, stop_dispatcher.clone()));
        let webhooks = Arc::new(Webhooks {
            sink: Arc::new(WebhookSink { shared: shared.clone(), ready }),
            workers: Mutex::new(Workers::new(tasks.clone(), stop_workers.clone())),
            lanes,
            data_dir: config.data_dir.clone(),
            sender,
            backoff,
            shared,
            dispatcher: dispatcher_task,
            stop_dispatcher,
            tasks,
            stop_workers,
        });
        webhooks.set_apps(&config.webhooks);
        // After the first table: housekeeping tells removed targets from configured ones.
        webhooks.tasks.spawn(housekeeping::run(webhooks.shared.clone(), webhooks.stop_workers.clone()));
        Ok(webhooks)
    }

    /// Replaces the whole per-app webhook configuration (app id → its webhooks; the map
    /// `Config::webhooks` holds). This is the hook a configuration reload calls. It applies
    /// to the next event the dispatcher takes: an app that gained targets starts sending, an
    /// app whose targets, batching or limits changed uses the new ones, an app that lost all
    /// targets produces no more deliveries. Workers of new targets start, workers of removed
    /// targets stop; what a removed target still has in the outbox waits there (resumed if
    /// the target comes back, dead-lettered as "target removed" after
    /// `webhook_retry_max_elapsed`). Events queued in memory keep their order.
    ///
    /// Safe to call at any time, from any thread, concurrently with the event path (which
    /// never waits for it); calls are serialised. The first time some app has targets it
    /// opens the outbox in `data_dir` (blocking file I/O, once); if that fails, the error is
    /// logged naming `data_dir`, those apps' deliveries are dropped and counted in
    /// `herald_webhook_deliveries_lost_total`, and the next call tries again.
    pub fn set_apps(&self, apps: &HashMap<String, AppWebhooks>) {
        let Ok(mut workers) = self.workers.lock() else {
            tracing::error!("webhook configuration not applied: an earlier change panicked");
            return;
        };
        let shared = &self.shared;
        if shared.store.get().is_none() && apps.values().any(|w| !w.targets.is_empty()) {
            match open_store(&self.data_dir, &shared.metrics) {
                Ok(store) => {
                    let _ = shared.store.set(store);
                }
                Err(e) => tracing::error!(
                    error = %e,
                    "cannot open the webhook outbox; webhook deliveries are dropped until a configuration change \
                     can open it (counted in herald_webhook_deliveries_lost_total)"
                ),
            }
        }
        let table = {
            let mut state = |app: &str| shared.state(app, &self.lanes);
            let mut notify = |key: &str| workers.notify(key);
            Arc::new(routes::build(apps, &shared.settings, &mut state, &mut notify))
        };
        shared.routes.store(table.clone());
        let env = shared.store.get().map(|store| WorkerEnv {
            shared: shared.clone(),
            store: store.clone(),
            sender: self.sender.clone(),
            backoff: self.backoff,
        });
        workers.sync(&table, env.as_ref());
        if let (Some(store), false) = (shared.store.get(), workers.pending_reported) {
            workers.pending_reported = true;
            report_pending(store, &table);
        }
        // Lets the dispatcher retire the queues of apps that lost their targets.
        self.sink.ready.notify_one();
    }

    /// Where the app's key and secret are looked up (at each attempt). `start` uses the apps
    /// of the config; a server whose apps change at run time passes its app store here.
    pub fn use_app_store(&self, apps: Arc<dyn AppStore>) {
        self.shared.apps.store(Arc::new(apps));
    }

    /// Where the aggregated dead-letter counts go as `webhook_dead_letter` alerts (at most one
    /// per app per 10 s report). Called once, at start-up.
    pub fn use_alerts(&self, alerts: Arc<crate::alerts::Alerts>) {
        let _ = self.shared.alerts.set(alerts);
    }

    /// Where the workers record deliveries for the debug console (once, at start-up).
    pub(crate) fn use_tap(&self, tap: Arc<crate::console::tap::Tap>) {
        let _ = self.shared.tap.set(tap);
    }

    /// Counts every webhook request sent (each attempt) in `requests` (usage accounting).
    pub(crate) fn count_requests_in(&self, requests: Arc<crate::usage::Requests>) {
        let _ = self.shared.requests.set(requests);
    }

    /// The sink to hand to the hub.
    pub fn sink(&self) -> Arc<dyn EventSink> {
        self.sink.clone()
    }

    /// Shutdown: flush held removals and open batches into the outbox at once, let the
    /// workers deliver for up to `drain`, then stop them; what is left stays in the outbox
    /// for the next start.
    pub async fn shutdown(&self, drain: Duration) {
        self.stop_dispatcher.cancel();
        self.dispatcher.close();
        self.dispatcher.wait().await;
        if let Some(store) = self.shared.store.get() {
            let mut depth = store.watch_depth();
            if tokio::time::timeout(drain, depth.wait_for(|d| *d <= 0)).await.is_err() {
                tracing::info!(pending = store.depth(), "webhook deliveries left in the outbox for the next start");
            }
        }
        self.stop_workers.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Up to `limit` dead letters of an app with an id above `after`, oldest first.
    pub(crate) async fn dead_letters(
        &self,
        app_id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let app = app_id.to_owned();
        let page = self.blocking(move |o| o.dead_letters_page(&app, after, limit)).await?;
        Ok(page.unwrap_or(Page { letters: Vec::new(), next: None }))
    }

    /// Up to `limit` pending deliveries of an app (target by target, each in order), and how
    /// many it has in all.
    pub(crate) async fn pending(&self, app_id: &str, limit: usize) -> Result<(Vec<PendingDelivery>, u64), StoreError> {
        let app = app_id.to_owned();
        let rows = self.blocking(move |o| o.pending_of_app(&app, limit)).await?.unwrap_or_default();
        let retries = self.shared.retries.lock().map(|r| r.clone()).unwrap_or_default();
        let list = rows
            .into_iter()
            .map(|(target, seq, record)| {
                let retry = retries.get(&target).filter(|r| r.seq == seq);
                PendingDelivery {
                    id: seq,
                    url: store::url_of(&target).to_owned(),
                    body: record.body,
                    attempts: retry.map_or(0, |r| r.attempts),
                    next_attempt_ms: retry.map(|r| r.next_attempt_ms),
                }
            })
            .collect();
        Ok((list, self.counts(app_id).0))
    }

    /// An app's `(pending deliveries, dead letters)` on disk.
    pub(crate) fn counts(&self, app_id: &str) -> (u64, u64) {
        self.shared.store.get().map_or((0, 0), |s| {
            let c = s.counts(app_id);
            (c.pending, c.dead)
        })
    }

    /// Puts dead letters of an app (`id`, or all) back into the outbox with a fresh `time_ms`;
    /// returns how many. Letters whose target is not configured now stay dead.
    pub(crate) async fn resend(&self, app_id: &str, id: Option<u64>) -> Result<usize, StoreError> {
        let app = app_id.to_owned();
        let table = self.shared.routes.load_full();
        let known = table.clone();
        let resent = self
            .blocking(move |o| {
                o.resend(
                    &app,
                    id,
                    |t| known.has_target(t),
                    |body| {
                        let mut b: payload::Body = serde_json::from_str(body)?;
                        b.time_ms = payload::now_ms();
                        Ok(b.to_json())
                    },
                )
            })
            .await?;
        let Some((n, touched)) = resent else { return Ok(0) };
        for t in table.targets().filter(|t| touched.contains(&t.key)) {
            t.notify.notify_one();
        }
        Ok(n)
    }

    /// Runs an outbox operation off the async threads; `None` when there is no outbox yet.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&DeliveryStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<Option<T>, StoreError> {
        let Some(store) = self.shared.store.get().cloned() else { return Ok(None) };
        tokio::task::spawn_blocking(move || f(&store)).await.map_err(|e| StoreError::Task(e.to_string()))?.map(Some)
    }
}

/// Opens (creating it if needed) the outbox in `data_dir`.
fn open_store(data_dir: &std::path::Path, metrics: &WebhookMetrics) -> Result<Arc<DeliveryStore>, WebhookError> {
    let store = DeliveryStore::open(data_dir, metrics.outbox_depth.clone())
        .map_err(|source| WebhookError::DataDir { path: data_dir.display().to_string(), source })?;
    if store.depth() > 0 {
        tracing::info!(pending = store.depth(), "resuming webhook deliveries from the outbox");
    }
    Ok(Arc::new(store))
}

/// Warns about outbox entries of targets `table` does not have (they wait, see
/// `housekeeping.rs`).
fn report_pending(store: &DeliveryStore, table: &Table) {
    match store.pending_targets() {
        Ok(pending) => {
            for key in pending.iter().filter(|k| !table.has_target(k)) {
                tracing::warn!(
                    target = %key,
                    "webhook outbox has deliveries for a target no longer configured; they wait in the outbox \
                     (dead-lettered after webhook_retry_max_elapsed unless the target comes back)"
                );
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot scan the webhook outbox"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::config::WebhookTarget;
    use herald_core::events::EventKinds;
    use metrics_exporter_prometheus::PrometheusHandle;

    fn hooks(kinds: &[EventKind]) -> HashMap<String, AppWebhooks> {
        let target = WebhookTarget {
            url: "http://127.0.0.1:9/hook".into(),
            event_types: EventKinds::of(kinds),
            filter: Default::default(),
            headers: Vec::new(),
        };
        HashMap::from([("app-id".to_owned(), AppWebhooks { targets: vec![target], ..Default::default() })])
    }

    /// A sink on a `Shared` without outbox, with `queue` events per app, and the dispatcher's
    /// inbox.
    fn fixture(queue: usize) -> (Arc<Shared>, queues::LaneSender, WebhookSink, queues::Inbox, PrometheusHandle) {
        let recorder = Arc::new(metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        let config = Config { webhook_queue_size: queue, ..Config::default() };
        let shared = Arc::new(Shared::new(&config, recorder));
        let (lanes, ready, inbox) = queues::inbox();
        let sink = WebhookSink { shared: shared.clone(), ready };
        (shared, lanes, sink, inbox, handle)
    }

    /// What `Webhooks::set_apps` does to the table.
    fn install(shared: &Shared, lanes: &queues::LaneSender, apps: &HashMap<String, AppWebhooks>) {
        let mut state = |app: &str| shared.state(app, lanes);
        let mut notify = |_: &str| Arc::new(Notify::new());
        shared.routes.store(Arc::new(routes::build(apps, &shared.settings, &mut state, &mut notify)));
    }

    fn occupied(c: &str) -> ChannelEvent {
        ChannelEvent::Occupied { channel: c.into() }
    }

    #[test]
    fn full_queue_drops_and_counts_per_app_and_a_removed_app_emits_nothing() {
        let (shared, lanes, sink, mut inbox, metrics) = fixture(1);
        install(&shared, &lanes, &hooks(&[EventKind::Occupied]));
        assert!(sink.wants("app-id", EventKind::Occupied) && sink.wants("app-id", EventKind::Vacated), "pairs");
        assert!(!sink.wants("app-id", EventKind::ClientEvent) && !sink.wants("b", EventKind::Occupied));
        for c in ["x", "y", "z"] {
            sink.emit("app-id", occupied(c));
        }
        let mut got = Vec::new();
        inbox.drain(10, |app, _, ev| got.push((app.to_string(), ev)));
        assert_eq!(got, [("app-id".to_owned(), occupied("x"))]);
        let text = metrics.render();
        assert!(text.contains(r#"herald_webhook_events_dropped_total{app_id="app-id"} 2"#), "{text}");
        assert!(shared.report_apps()[0].report()[0].2.starts_with("2 webhook events dropped for app app-id"));

        install(&shared, &lanes, &hooks(&[EventKind::CacheMiss]));
        assert!(!sink.wants("app-id", EventKind::Occupied), "the new event types apply at once");
        assert_eq!(inbox.drain(10, |_, _, _| {}), 0);
        assert_eq!(inbox.lanes(), 1, "the app kept its queue across the change");

        install(&shared, &lanes, &HashMap::new());
        assert!(!sink.wants("app-id", EventKind::CacheMiss));
        sink.emit("app-id", ChannelEvent::CacheMiss { channel: "c".into() });
        assert_eq!(inbox.drain(10, |_, _, _| {}), 0, "an app without targets queues nothing");
        assert_eq!(shared.report_apps().len(), 1, "a last report for the app…");
        assert!(shared.report_apps().is_empty(), "…then it is forgotten");
        assert_eq!(inbox.drain(10, |_, _, _| {}), 0);
        assert_eq!(inbox.lanes(), 0, "and its queue retired");
    }

    #[test]
    fn an_app_given_targets_again_while_its_events_wait_keeps_their_order() {
        let (shared, lanes, sink, mut inbox, _) = fixture(10);
        install(&shared, &lanes, &hooks(&[EventKind::Occupied]));
        sink.emit("app-id", occupied("before"));
        install(&shared, &lanes, &HashMap::new());
        assert_eq!(shared.report_apps().len(), 1);
        assert_eq!(shared.report_apps().len(), 1, "kept while its queue holds an event");
        install(&shared, &lanes, &hooks(&[EventKind::Occupied]));
        sink.emit("app-id", occupied("after"));
        let mut got = Vec::new();
        inbox.drain(10, |_, _, ev| got.push(ev));
        assert_eq!(got, [occupied("before"), occupied("after")]);
        assert_eq!(inbox.lanes(), 1, "one queue");
    }
}
