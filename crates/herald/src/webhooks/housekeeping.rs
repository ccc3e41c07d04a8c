//! The housekeeping task. Once a second, when the outbox is open:
//! * it prunes the dead letters older than their app's `webhook_dead_letter_max_age` (oldest
//!   first; the count cap is enforced when a letter is added, by the worker);
//! * it moves the outbox entries of targets that are not configured (removed by a
//!   configuration change, or before a restart) to the dead letters, with the error "target
//!   removed", once the target has been missing for `webhook_retry_max_elapsed` (counted from
//!   when this task first saw it missing: the change, or the start) and only entries at least
//!   that old. Until then they wait: a target configured again (same app, same URL) resumes
//!   them in order, and apps loaded after the start have time to appear.
//!
//! Every [`REPORT_INTERVAL`] it writes the aggregated per-app warnings of `per_app.rs` (an
//! app's dead letters of the interval also become one `webhook_dead_letter` alert), and
//! forgets the counters of apps whose state is gone (after writing their last report). On
//! stop it writes what is left to report and ends.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::payload::now_ms;
use super::per_app::{Kind, PerApp, REPORT_INTERVAL};
use super::routes::Limits;
use super::store::{app_of, DeliveryStore, StoreError};
use super::Shared;
use crate::alerts::{Alert, AlertKind};

/// How often aged dead letters and expired entries of removed targets are looked for.
const PRUNE_INTERVAL: Duration = Duration::from_secs(1);
/// Entries of a removed target moved to the dead letters per transaction at most.
const EXPIRE_BATCH: usize = 1000;
/// The `last_error` of an entry whose target was removed.
pub(crate) const TARGET_REMOVED: &str = "target removed";

/// Runs until `stop` is cancelled.
pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let mut prune = tokio::time::interval(PRUNE_INTERVAL);
    let mut report = tokio::time::interval(REPORT_INTERVAL);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    report.tick().await; // the first tick is immediate
    let mut missing = Missing::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                write_report(&shared);
                return;
            }
            _ = prune.tick() => missing = tidy(&shared, missing).await,
            _ = report.tick() => write_report(&shared),
        }
    }
}

/// Target keys with outbox entries but no configuration, and since when this task knows.
type Missing = HashMap<String, Instant>;

/// One pass (on a blocking thread); returns the updated `missing` (kept as it was if the
/// pass failed).
async fn tidy(shared: &Arc<Shared>, mut missing: Missing) -> Missing {
    let Some(store) = shared.store.get().cloned() else { return missing };
    let shared = shared.clone();
    let before = missing.clone();
    let result = tokio::task::spawn_blocking(move || {
        prune_aged(&shared, &store)?;
        expire_removed(&shared, &store, &mut missing)?;
        Ok::<Missing, StoreError>(missing)
    })
    .await;
    match result {
        Ok(Ok(missing)) => return missing,
        Ok(Err(e)) => tracing::error!(error = %e, "cannot prune the webhook dead letters"),
        Err(e) => tracing::error!(error = %e, "webhook dead-letter pruning task failed"),
    }
    before
}

/// The limits and counters of `app_id` as configured now (node values and no counters for an
/// app without targets).
fn app(shared: &Shared, app_id: &str) -> (Limits, Option<Arc<PerApp>>) {
    match shared.routes.load().get(app_id) {
        Some(r) => (r.limits, Some(r.state.per_app.clone())),
        None => (Limits::node(&shared.settings), None),
    }
}

fn cutoff(now: u64, age: Duration) -> u64 {
    now.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX))
}

fn prune_aged(shared: &Shared, store: &DeliveryStore) -> Result<(), StoreError> {
    let now = now_ms();
    for app_id in store.apps_with_dead_letters() {
        let (limits, per_app) = app(shared, &app_id);
        let pruned = store.prune_older_than(&app_id, cutoff(now, limits.dead_letter_max_age))?;
        if let Some(p) = per_app {
            p.note_pruned(pruned, true);
        }
    }
    Ok(())
}

fn expire_removed(shared: &Shared, store: &DeliveryStore, missing: &mut Missing) -> Result<(), StoreError> {
    let window = shared.settings.retry_max_elapsed;
    let before = cutoff(now_ms(), window);
    let pending = store.pending_targets()?;
    missing.retain(|k, _| pending.contains(k));
    let now = Instant::now();
    for key in pending {
        // Checked against the table of now, right before the write.
        if shared.routes.load().has_target(&key) {
            missing.remove(&key);
            continue;
        }
        let since = *missing.entry(key.clone()).or_insert(now);
        if now.saturating_duration_since(since) < window {
            continue;
        }
        let (limits, per_app) = app(shared, app_of(&key));
        let (moved, pruned) = store.expire(&key, before, TARGET_REMOVED, limits.dead_letters_max, EXPIRE_BATCH)?;
        if moved > 0 {
            tracing::debug!(target = %key, moved, "webhook deliveries of a removed target moved to the dead letters");
            shared.metrics.dead_lettered.increment(moved);
        }
        if let Some(p) = per_app {
            p.note(Kind::DeadLettered, moved);
            p.note_pruned(pruned, false);
        }
    }
    Ok(())
}

/// The aggregated warnings; an app's dead letters of the interval also make one
/// `webhook_dead_letter` alert with their count.
fn write_report(shared: &Shared) {
    for app in shared.report_apps() {
        for (kind, n, line) in app.report() {
            tracing::warn!(app_id = %app.app_id, "{line}");
            if kind == Kind::DeadLettered {
                if let Some(alerts) = shared.alerts.get() {
                    let message = format!(
                        "{n} webhook deliveries of app {} were dead-lettered in the last {} s (failed for the whole retry window)",
                        app.app_id,
                        REPORT_INTERVAL.as_secs()
                    );
                    let alert = Alert::new(AlertKind::WebhookDeadLetter, message)
                        .app(&app.app_id)
                        .detail("count", n)
                        .detail("interval_seconds", REPORT_INTERVAL.as_secs());
                    alerts.emit(alert);
                }
            }
        }
    }
}
