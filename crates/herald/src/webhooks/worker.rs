//! One delivery worker per target: head-of-line, in order, retried with backoff.
//!
//! The worker takes the oldest outbox entry of its target and POSTs it until it succeeds
//! (then deletes it) or the retry budget (`webhook_retry_max_elapsed`, counted from the
//! delivery's creation, also across restarts) is spent (then moves it to the dead letters).
//! Only then does it look at the next entry, so a target receives its deliveries in the order
//! they were created, which keeps the per-channel order. A failing or hanging receiver only
//! delays its own queue: the socket hot path never waits for a worker. A dead letter is logged
//! at debug level; the warning is the per-app summary of `per_app.rs`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::backoff::{Backoff, Next};
use super::config::WebhookTarget;
use super::payload::now_ms;
use super::per_app::{Kind, PerApp};
use super::sender::{Destination, Sender};
use super::store::{DeadLetter, DeliveryStore, Record};
use super::WebhookMetrics;

/// A configured target at run time.
#[derive(Debug)]
pub(crate) struct Target {
    /// Stable identity in the outbox: `{app_id} {url}`, plus `#n` for the n-th repeat of the
    /// same URL in one app. Survives restarts as long as the config keeps the target.
    pub key: String,
    pub app_id: String,
    /// The app's position in `config.apps` (indexes the per-app limits and queues).
    pub app_index: usize,
    pub spec: WebhookTarget,
    pub dest: Destination,
    /// Wakes the worker after the dispatcher (or a dead-letter resend) enqueued work. A
    /// `Notify` stores one permit, so a wake-up sent while the worker is busy is not lost.
    pub notify: Notify,
}

/// The outbox key of the `nth` target with `url` in app `app_id`.
pub(crate) fn target_key(app_id: &str, url: &str, nth: usize) -> String {
    if nth == 0 {
        format!("{app_id} {url}")
    } else {
        format!("{app_id} {url}#{nth}")
    }
}

/// What a worker shares with its siblings.
#[derive(Clone)]
pub(crate) struct WorkerEnv {
    pub store: Arc<DeliveryStore>,
    pub sender: Sender,
    pub backoff: Backoff,
    pub metrics: WebhookMetrics,
    /// Per app index: the dead-letter cap, and where dead letters are counted.
    pub per_app: Arc<Vec<PerApp>>,
}

/// Runs until `stop` is cancelled. An attempt in flight then is abandoned (the entry stays in
/// the outbox and is sent again on the next start).
pub(crate) async fn run(target: Arc<Target>, env: WorkerEnv, stop: CancellationToken) {
    loop {
        if stop.is_cancelled() {
            return;
        }
        let head = {
            let (store, key) = (env.store.clone(), target.key.clone());
            tokio::task::spawn_blocking(move || store.head(&key)).await
        };
        let (seq, record) = match head {
            Ok(Ok(Some(h))) => h,
            Ok(Ok(None)) => {
                tokio::select! {
                    () = target.notify.notified() => continue,
                    () = stop.cancelled() => return,
                }
            }
            Ok(Err(e)) => {
                tracing::error!(target = %target.key, error = %e, "cannot read the webhook outbox; retrying in 1 s");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    () = stop.cancelled() => return,
                }
            }
            Err(_) => return, // the runtime is shutting down
        };
        if !deliver(&target, &env, seq, record, &stop).await {
            return;
        }
    }
}

/// Delivers (or dead-letters) one entry. Returns false if `stop` interrupted it.
async fn deliver(target: &Target, env: &WorkerEnv, seq: u64, record: Record, stop: &CancellationToken) -> bool {
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let result = tokio::select! {
            r = env.sender.send(&target.dest, &record.body) => r,
            () = stop.cancelled() => return false,
        };
        let error = match result {
            Ok(()) => {
                env.metrics.delivered.increment(1);
                blocking(env, move |o, key| o.remove(&key, seq), &target.key).await;
                return true;
            }
            Err(e) => e,
        };
        env.metrics.failed_attempts.increment(1);
        let elapsed = Duration::from_millis(now_ms().saturating_sub(record.created_ms));
        match env.backoff.next(attempt, elapsed) {
            Next::RetryAfter(delay) => {
                tracing::debug!(target = %target.key, attempt, error = %error, ?delay, "webhook delivery failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.cancelled() => return false,
                }
            }
            Next::GiveUp => {
                tracing::debug!(
                    target = %target.key, attempts = attempt, error = %error,
                    "webhook delivery failed for the whole retry window; moved to the dead letters"
                );
                let dl = DeadLetter {
                    id: 0,
                    app_id: record.app_id.clone(),
                    target: target.key.clone(),
                    url: target.spec.url.clone(),
                    body: record.body.clone(),
                    created_ms: record.created_ms,
                    failed_ms: now_ms(),
                    attempts: attempt,
                    last_error: error.to_string(),
                };
                env.metrics.dead_lettered.increment(1);
                let Some(app) = env.per_app.get(target.app_index) else { return true };
                app.note(Kind::DeadLettered, 1);
                let max = app.dead_letters_max;
                let pruned = blocking(env, move |o, key| o.dead_letter(&key, seq, dl, max).map(|r| r.1), &target.key);
                app.note_pruned(pruned.await.unwrap_or(0), false);
                return true;
            }
        }
    }
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
