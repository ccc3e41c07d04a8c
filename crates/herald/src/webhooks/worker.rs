//! One delivery worker per target: head-of-line, in order, retried with backoff.
//!
//! The worker takes the oldest outbox entry of its target and POSTs it until it succeeds
//! (then deletes it) or the retry budget (`webhook_retry_max_elapsed`, counted from the
//! delivery's creation, also across restarts) is spent (then moves it to the dead letters).
//! Only then does it look at the next entry, so a target receives its deliveries in the order
//! they were created, which keeps the per-channel order. A failing or hanging receiver only
//! delays its own queue: the socket hot path never waits for a worker. A dead letter is logged
//! at debug level; the warning is the per-app summary of `per_app.rs`.
//!
//! A worker is named by its target key and reads its target's current configuration (headers,
//! the app's dead-letter cap) and the app's credentials at each attempt, so a configuration
//! change that keeps the key applies to the next attempt. [`Workers`] starts and stops them as
//! `Webhooks::set_apps` adds and removes keys: a stopped worker abandons an attempt in flight
//! (the entry stays in the outbox), and a worker started again for the same key first waits
//! for the stopped one to end, so one key never has two workers.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::backoff::{Backoff, Next};
use super::payload::now_ms;
use super::per_app::Kind;
use super::routes::{Table, Target};
use super::sender::{SendError, Sender};
use super::store::{DeadLetter, DeliveryStore, Record};
use super::Shared;
use crate::console::tap::{Entry, EntryKind};

/// What a worker shares with its siblings.
#[derive(Clone)]
pub(crate) struct WorkerEnv {
    pub shared: Arc<Shared>,
    pub store: Arc<DeliveryStore>,
    pub sender: Sender,
    pub backoff: Backoff,
}

/// One running worker.
struct Running {
    stop: CancellationToken,
    handle: JoinHandle<()>,
}

/// The workers, one per configured target key. Owned by `Webhooks` under the lock that
/// serialises `set_apps`, and touched only there.
pub(crate) struct Workers {
    running: HashMap<String, Running>,
    /// Workers stopped by a configuration change, until they have ended (a worker started
    /// again for the key waits for its predecessor).
    stopping: HashMap<String, JoinHandle<()>>,
    /// The wake-up of each key, reused while a worker or a target of any table holds it, so
    /// a delivery routed before the key was removed and re-added still wakes the new worker.
    notifies: HashMap<String, Weak<Notify>>,
    tracker: TaskTracker,
    /// The parent of every worker's token: cancelled by the shutdown.
    stop: CancellationToken,
    /// Whether the outbox's entries of unconfigured targets were reported (once, when the
    /// outbox is first used).
    pub pending_reported: bool,
}

impl Workers {
    pub(crate) fn new(tracker: TaskTracker, stop: CancellationToken) -> Workers {
        Workers {
            running: HashMap::new(),
            stopping: HashMap::new(),
            notifies: HashMap::new(),
            tracker,
            stop,
            pending_reported: false,
        }
    }

    /// The wake-up of target `key` (the live one if any).
    pub(crate) fn notify(&mut self, key: &str) -> Arc<Notify> {
        if let Some(n) = self.notifies.get(key).and_then(Weak::upgrade) {
            return n;
        }
        let n = Arc::new(Notify::new());
        self.notifies.insert(key.to_owned(), Arc::downgrade(&n));
        n
    }

    /// Stops the workers of keys not in `table`; with an outbox (`env`), starts one for each
    /// key of `table` that has none.
    pub(crate) fn sync(&mut self, table: &Table, env: Option<&WorkerEnv>) {
        let gone: Vec<String> = self.running.keys().filter(|k| !table.has_target(k)).cloned().collect();
        for key in gone {
            if let Some(w) = self.running.remove(&key) {
                w.stop.cancel();
                self.stopping.insert(key, w.handle);
            }
        }
        self.stopping.retain(|_, h| !h.is_finished());
        self.notifies.retain(|_, n| n.strong_count() > 0);
        let Some(env) = env else { return };
        for target in table.targets() {
            if self.running.contains_key(&target.key) {
                continue;
            }
            let stop = self.stop.child_token();
            let previous = self.stopping.remove(&target.key);
            let (key, app, notify, env, token) =
                (target.key.clone(), target.app_id.clone(), target.notify.clone(), env.clone(), stop.clone());
            let handle = self.tracker.spawn(async move {
                if let Some(p) = previous {
                    let _ = p.await;
                }
                run(Worker { key, app_id: app, notify }, env, token).await;
            });
            self.running.insert(target.key.clone(), Running { stop, handle });
        }
    }
}

/// A worker's identity: its target key, its app, its wake-up.
struct Worker {
    key: String,
    app_id: Arc<str>,
    notify: Arc<Notify>,
}

/// Runs until `stop` is cancelled or its target is no longer configured. An attempt in
/// flight then is abandoned: the entry stays in the outbox, for the next worker of the key
/// (after a restart, or when the target is configured again).
async fn run(w: Worker, env: WorkerEnv, stop: CancellationToken) {
    loop {
        if stop.is_cancelled() {
            return;
        }
        let head = {
            let (store, key) = (env.store.clone(), w.key.clone());
            tokio::task::spawn_blocking(move || store.head(&key)).await
        };
        let (seq, record) = match head {
            Ok(Ok(Some(h))) => h,
            Ok(Ok(None)) => {
                tokio::select! {
                    () = w.notify.notified() => continue,
                    () = stop.cancelled() => return,
                }
            }
            Ok(Err(e)) => {
                tracing::error!(target = %w.key, error = %e, "cannot read the webhook outbox; retrying in 1 s");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    () = stop.cancelled() => return,
                }
            }
            Err(_) => return, // the runtime is shutting down
        };
        let done = deliver(&w, &env, seq, record, &stop).await;
        env.shared.clear_retry(&w.key);
        if !done {
            return;
        }
    }
}

/// Delivers (or dead-letters) one entry. Returns false if `stop` interrupted it or the target
/// is no longer configured.
async fn deliver(w: &Worker, env: &WorkerEnv, seq: u64, record: Record, stop: &CancellationToken) -> bool {
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        // The target as configured now; gone: `set_apps` removed it and stops this worker.
        let Some((app, target)) = env.shared.routes.load().target(&w.app_id, &w.key) else { return false };
        let result = tokio::select! {
            r = send(env, &target, &record.body) => r,
            () = stop.cancelled() => return false,
        };
        let metrics = &env.shared.metrics;
        let error = match result {
            Ok(()) => {
                metrics.delivered.increment(1);
                let (url, body) = (&target.spec.url, &record.body);
                record_in_tap(env, &w.app_id, EntryKind::WebhookDelivered, || {
                    format!("{url} {}: delivered (attempt {attempt})", event_names(body))
                });
                blocking(env, move |o, key| o.remove(&key, seq), &w.key).await;
                return true;
            }
            Err(e) => e,
        };
        metrics.failed_attempts.increment(1);
        let elapsed = Duration::from_millis(now_ms().saturating_sub(record.created_ms));
        match env.backoff.next(attempt, elapsed) {
            Next::RetryAfter(delay) => {
                tracing::debug!(target = %w.key, attempt, error = %error, ?delay, "webhook delivery failed; retrying");
                let (url, body) = (&target.spec.url, &record.body);
                record_in_tap(env, &w.app_id, EntryKind::WebhookFailed, || {
                    format!(
                        "{url} {}: {error} (attempt {attempt}; retrying in {} ms)",
                        event_names(body),
                        delay.as_millis()
                    )
                });
                env.shared.note_retry(&w.key, seq, attempt, delay);
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.cancelled() => return false,
                }
            }
            Next::GiveUp => {
                tracing::debug!(
                    target = %w.key, attempts = attempt, error = %error,
                    "webhook delivery failed for the whole retry window; moved to the dead letters"
                );
                let (url, body) = (&target.spec.url, &record.body);
                record_in_tap(env, &w.app_id, EntryKind::WebhookDeadLetter, || {
                    format!("{url} {}: {error} (gave up after {attempt} attempts)", event_names(body))
                });
                let dl = DeadLetter {
                    id: 0,
                    app_id: record.app_id.clone(),
                    target: w.key.clone(),
                    url: target.spec.url.clone(),
                    body: record.body.clone(),
                    created_ms: record.created_ms,
                    failed_ms: now_ms(),
                    attempts: attempt,
                    last_error: error.to_string(),
                };
                metrics.dead_lettered.increment(1);
                let per_app = &app.state.per_app;
                per_app.note(Kind::DeadLettered, 1);
                let max = app.limits.dead_letters_max;
                let pruned = blocking(env, move |o, key| o.dead_letter(&key, seq, dl, max).map(|r| r.1), &w.key);
                per_app.note_pruned(pruned.await.unwrap_or(0), false);
                return true;
            }
        }
    }
}

/// Records a webhook outcome for the debug console, if it watches the app; `detail` builds the
/// text (target URL, event names, outcome) only then.
fn record_in_tap(env: &WorkerEnv, app_id: &str, kind: EntryKind, detail: impl FnOnce() -> String) {
    if let Some(tap) = env.shared.tap.get() {
        tap.record(app_id, || Entry::new(kind).detail(detail()));
    }
}

/// The event names of a webhook body (`[channel_occupied, member_added]`).
fn event_names(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Named {
        name: String,
    }
    #[derive(serde::Deserialize)]
    struct Names {
        events: Vec<Named>,
    }
    match serde_json::from_str::<Names>(body) {
        Ok(b) => format!("[{}]", b.events.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")),
        Err(_) => "[?]".to_owned(),
    }
}

/// One POST of `body` to `target`, signed with its app's credentials as they are now.
async fn send(env: &WorkerEnv, target: &Target, body: &str) -> Result<(), SendError> {
    let app = env.shared.app(&target.app_id).ok_or_else(|| SendError::UnknownApp(target.app_id.to_string()))?;
    if let Some(requests) = env.shared.requests.get() {
        requests.count(&target.app_id);
    }
    env.sender.send(&target.dest, &app.key, &app.secret, body).await
}

/// Runs an outbox write off the async threads; logs a failure (the entry then stays in the
/// outbox and is attempted again: at-least-once) and returns `None` then.
async fn blocking<T: Send + 'static>(
    env: &WorkerEnv,
    f: impl FnOnce(&DeliveryStore, String) -> Result<T, super::store::StoreError> + Send + 'static,
    key: &str,
) -> Option<T> {
    let (store, key) = (env.store.clone(), key.to_owned());
    match tokio::task::spawn_blocking(move || f(&store, key)).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot update the webhook outbox");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "webhook outbox task failed");
            None
        }
    }
}
