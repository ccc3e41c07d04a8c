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
//! 4. the housekeeping task (`housekeeping.rs`) prunes aged dead letters and writes the
//!    aggregated per-app warnings (`per_app.rs`).
//!
//! [`Webhooks`] wires these together and runs the shutdown flush. `fuzz.rs` is the body of the
//! `webhook_payload` fuzz target (`crate::fuzzing`), which drives step 2's pure stages.

pub mod admin;
mod backoff;
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
mod sender;
mod store;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use herald_core::app::App;
use herald_core::events::{ChannelEvent, EventKind, EventKinds, EventSink};
use metrics::{Counter, Gauge, Key, Level, Metadata, Recorder};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::backoff::Backoff;
use self::config::WebhookSettings;
use self::per_app::{Kind, PerApp};
use self::sender::{Destination, Sender};
use self::store::{DeliveryStore, Page, StoreError};
use self::worker::{Target, WorkerEnv};
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

/// The core's [`EventSink`]: filters by what the app's targets want, then `try_send`s into
/// the app's queue.
pub struct WebhookSink {
    /// app id → (app index, event kinds wanted). Immutable after start: no lock.
    apps: HashMap<String, (usize, EventKinds)>,
    queues: queues::Senders,
    /// Counts drops per app (metric and the aggregated warning).
    per_app: Arc<Vec<PerApp>>,
}

impl EventSink for WebhookSink {
    fn wants(&self, app_id: &str, kind: EventKind) -> bool {
        self.apps.get(app_id).is_some_and(|(_, m)| m.contains(kind))
    }

    fn emit(&self, app_id: &str, event: ChannelEvent) {
        let Some(&(idx, _)) = self.apps.get(app_id) else { return };
        if !self.queues.try_send(idx, event) {
            if let Some(app) = self.per_app.get(idx) {
                app.note(Kind::Dropped, 1);
            }
        }
    }
}

/// Kinds an app's targets must be sent so that debouncing works: a removal cannot be
/// cancelled by a re-add the core never reported, so each pair is wanted together.
fn wanted(kinds: EventKinds) -> EventKinds {
    let pairs = [
        EventKinds::of(&[EventKind::Occupied, EventKind::Vacated]),
        EventKinds::of(&[EventKind::MemberAdded, EventKind::MemberRemoved]),
    ];
    pairs.into_iter().fold(kinds, |m, pair| if m.intersects(pair) { m.union(pair) } else { m })
}

/// The running webhook machinery of one server.
pub struct Webhooks {
    sink: Arc<WebhookSink>,
    store: Arc<DeliveryStore>,
    targets: Arc<Vec<Arc<Target>>>,
    /// The dispatcher task, ended by `stop_dispatcher` (it writes what it holds first).
    dispatcher: TaskTracker,
    stop_dispatcher: CancellationToken,
    /// One task per target and the housekeeping task, ended by `stop_workers` once the
    /// shutdown drain is over.
    workers: TaskTracker,
    stop_workers: CancellationToken,
}

impl Webhooks {
    /// Starts webhooks if any app has targets (else `Ok(None)`: no file is created). Opens
    /// the outbox in `data_dir` and spawns the dispatcher and one worker per target.
    pub fn start(config: &Config, recorder: &dyn Recorder) -> Result<Option<Arc<Webhooks>>, WebhookError> {
        if config.webhooks.values().all(|w| w.targets.is_empty()) {
            return Ok(None);
        }
        let settings = WebhookSettings::from_config(config);
        let metrics = WebhookMetrics::new(recorder);
        let store = DeliveryStore::open(&config.data_dir, metrics.outbox_depth.clone())
            .map_err(|source| WebhookError::DataDir { path: config.data_dir.display().to_string(), source })?;
        let store = Arc::new(store);

        let (apps, targets, sink_apps) = build_targets(config);
        let targets = Arc::new(targets);
        let per_app = Arc::new(PerApp::for_config(config, &settings, recorder));
        let (senders, inbox) = queues::per_app(config.apps.len(), settings.queue_size);
        let sink = Arc::new(WebhookSink { apps: sink_apps, queues: senders, per_app: per_app.clone() });

        let known: Vec<&str> = targets.iter().map(|t| t.key.as_str()).collect();
        match store.pending_targets() {
            Ok(pending) => {
                for key in pending.iter().filter(|k| !known.contains(&k.as_str())) {
                    tracing::warn!(target = %key, "webhook outbox has deliveries for a target no longer configured; they stay in the outbox");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot scan the webhook outbox"),
        }
        if store.depth() > 0 {
            tracing::info!(pending = store.depth(), "resuming webhook deliveries from the outbox");
        }

        let (stop_dispatcher, stop_workers) = (CancellationToken::new(), CancellationToken::new());
        let env = WorkerEnv {
            store: store.clone(),
            sender: Sender::new(settings.timeout)?,
            backoff: Backoff::webhooks(settings.retry_initial, settings.retry_max_elapsed)?,
            metrics: metrics.clone(),
            per_app: per_app.clone(),
        };
        let workers = TaskTracker::new();
        for t in targets.iter() {
            workers.spawn(worker::run(t.clone(), env.clone(), stop_workers.clone()));
        }
        workers.spawn(housekeeping::run(
            store.clone(),
            per_app.clone(),
            settings.dead_letter_max_age,
            stop_workers.clone(),
        ));
        let dispatcher = dispatcher::Dispatcher {
            apps,
            targets: targets.clone(),
            debounce: debounce::Debouncer::new(settings.removal_delay),
            batcher: batch::Batcher::new(settings.batch_window, settings.batch_max),
            store: store.clone(),
            metrics,
            per_app,
            cache_seen: (0..config.apps.len())
                .map(|_| dedup::CacheMissDedup::new(settings.cache_miss_dedup_max))
                .collect(),
        };
        let dispatcher_task = TaskTracker::new();
        dispatcher_task.spawn(dispatcher.run(inbox, stop_dispatcher.clone()));
        Ok(Some(Arc::new(Webhooks {
            sink,
            store,
            targets,
            dispatcher: dispatcher_task,
            stop_dispatcher,
            workers,
            stop_workers,
        })))
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
        let mut depth = self.store.watch_depth();
        if tokio::time::timeout(drain, depth.wait_for(|d| *d <= 0)).await.is_err() {
            tracing::info!(pending = self.store.depth(), "webhook deliveries left in the outbox for the next start");
        }
        self.stop_workers.cancel();
        self.workers.close();
        self.workers.wait().await;
    }

    /// Up to `limit` dead letters of an app with an id above `after`, oldest first.
    pub(crate) async fn dead_letters(
        &self,
        app_id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let app = app_id.to_owned();
        self.blocking(move |o| o.dead_letters_page(&app, after, limit)).await
    }

    /// Puts dead letters of an app (`id`, or all) back into the outbox with a fresh `time_ms`;
    /// returns how many. Letters whose target is no longer configured stay dead.
    pub(crate) async fn resend(&self, app_id: &str, id: Option<u64>) -> Result<usize, StoreError> {
        let app = app_id.to_owned();
        let known: Vec<String> = self.targets.iter().map(|t| t.key.clone()).collect();
        let (n, touched) = self
            .blocking(move |o| {
                let known = |t: &str| known.iter().any(|k| k == t);
                o.resend(&app, id, known, |body| {
                    let mut b: payload::Body = serde_json::from_str(body)?;
                    b.time_ms = payload::now_ms();
                    Ok(b.to_json())
                })
            })
            .await?;
        for t in self.targets.iter().filter(|t| touched.contains(&t.key)) {
            t.notify.notify_one();
        }
        Ok(n)
    }

    /// Runs an outbox operation off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&DeliveryStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store)).await.map_err(|e| StoreError::Task(e.to_string()))?
    }
}

type Built = (Vec<(bool, Vec<usize>)>, Vec<Arc<Target>>, HashMap<String, (usize, EventKinds)>);

/// Per app (index = position in `config.apps`): the batch flag and target indices; the
/// targets; and the sink's app table.
fn build_targets(config: &Config) -> Built {
    let mut apps = Vec::new();
    let mut targets = Vec::new();
    let mut sink_apps = HashMap::new();
    for (idx, app) in config.apps.iter().enumerate() {
        let hooks = config.webhooks.get(&app.id).cloned().unwrap_or_default();
        let mut indices = Vec::new();
        let mut mask = EventKinds::NONE;
        for spec in hooks.targets {
            let nth = targets.iter().filter(|t: &&Arc<Target>| t.app_id == app.id && t.spec.url == spec.url).count();
            mask = mask.union(spec.event_types);
            indices.push(targets.len());
            targets.push(Arc::new(Target {
                key: worker::target_key(&app.id, &spec.url, nth),
                app_id: app.id.clone(),
                app_index: idx,
                dest: destination(app, &spec),
                spec,
                notify: tokio::sync::Notify::new(),
            }));
        }
        if !mask.is_empty() {
            sink_apps.insert(app.id.clone(), (idx, wanted(mask)));
        }
        apps.push((hooks.batch, indices));
    }
    (apps, targets, sink_apps)
}

fn destination(app: &App, spec: &config::WebhookTarget) -> Destination {
    let mut extra_headers = HeaderMap::new();
    for (k, v) in &spec.headers {
        // Validated by the config loader.
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            extra_headers.insert(k, v);
        }
    }
    Destination { url: spec.url.clone(), app_key: app.key.clone(), app_secret: app.secret.clone(), extra_headers }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_drops_and_counts_per_app_without_blocking() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let config = Config::default();
        let per_app = Arc::new(PerApp::for_config(&config, &WebhookSettings::from_config(&config), &recorder));
        let (senders, mut inbox) = queues::per_app(1, 1);
        let mask = EventKinds::of(&[EventKind::Occupied]);
        let sink = WebhookSink {
            apps: HashMap::from([("app-id".to_string(), (0, wanted(mask)))]),
            queues: senders,
            per_app: per_app.clone(),
        };
        assert!(sink.wants("app-id", EventKind::Occupied) && sink.wants("app-id", EventKind::Vacated), "pairs");
        assert!(!sink.wants("app-id", EventKind::ClientEvent) && !sink.wants("b", EventKind::Occupied));
        for c in ["x", "y", "z"] {
            sink.emit("app-id", ChannelEvent::Occupied { channel: c.into() });
        }
        let mut got = Vec::new();
        inbox.drain(10, |app, ev| got.push((app, ev)));
        assert_eq!(got, [(0, ChannelEvent::Occupied { channel: "x".into() })]);
        let text = recorder.handle().render();
        assert!(text.contains(r#"herald_webhook_events_dropped_total{app_id="app-id"} 2"#), "{text}");
        assert!(per_app[0].report()[0].starts_with("2 webhook events dropped for app app-id"));
    }
}
