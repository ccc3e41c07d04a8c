//! The housekeeping task: once a second it prunes the dead letters older than their app's
//! `webhook_dead_letter_max_age` (oldest first; the count cap is enforced when a letter is
//! added, by the worker), and every [`REPORT_INTERVAL`] it writes the aggregated per-app
//! warnings of `per_app.rs`. On stop it writes what is left to report and ends.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::payload::now_ms;
use super::per_app::{PerApp, REPORT_INTERVAL};
use super::store::DeliveryStore;

/// How often aged dead letters are looked for.
const PRUNE_INTERVAL: Duration = Duration::from_secs(1);

/// Runs until `stop` is cancelled. `default_age` applies to dead letters of apps no longer
/// configured.
pub(super) async fn run(
    store: Arc<DeliveryStore>,
    per_app: Arc<Vec<PerApp>>,
    default_age: Duration,
    stop: CancellationToken,
) {
    let mut prune = tokio::time::interval(PRUNE_INTERVAL);
    let mut report = tokio::time::interval(REPORT_INTERVAL);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    report.tick().await; // the first tick is immediate
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                write_report(&per_app);
                return;
            }
            _ = prune.tick() => prune_aged(&store, &per_app, default_age).await,
            _ = report.tick() => write_report(&per_app),
        }
    }
}

async fn prune_aged(store: &Arc<DeliveryStore>, per_app: &Arc<Vec<PerApp>>, default_age: Duration) {
    let (store, per_app) = (store.clone(), per_app.clone());
    let result = tokio::task::spawn_blocking(move || {
        let now = now_ms();
        for app_id in store.apps_with_dead_letters() {
            let app = per_app.iter().find(|a| a.app_id == app_id);
            let age = app.map_or(default_age, |a| a.dead_letter_max_age);
            let cutoff = now.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
            let pruned = store.prune_older_than(&app_id, cutoff)?;
            if let Some(app) = app {
                app.note_pruned(pruned, true);
            }
        }
        Ok::<(), super::store::StoreError>(())
    })
    .await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "cannot prune the webhook dead letters"),
        Err(e) => tracing::error!(error = %e, "webhook dead-letter pruning task failed"),
    }
}

fn write_report(per_app: &[PerApp]) {
    for app in per_app {
        for line in app.report() {
            tracing::warn!(app_id = %app.app_id, "{line}");
        }
    }
}
