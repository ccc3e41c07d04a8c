//! Delivery: one task and one bounded queue per target, so a target that fails or hangs
//! delays only its own alerts, never another target's and never the caller.
//!
//! A task POSTs each alert body in turn (`Content-Type: application/json`, 10 s timeout, no
//! redirects); any 2xx is success (`herald_alerts_sent_total{event}`). A failure is retried on
//! the webhooks' jittered exponential schedule (`webhooks/backoff.rs`: 1 s doubling to 60 s)
//! for at most [`RETRY_WINDOW`], then given up (`herald_alerts_failed_total`, one warning
//! naming the target by its position, `alerts[0]`: the URL of a Slack webhook is a secret and
//! is never logged). Nothing is written to disk: alerts still queued or being retried when the
//! node stops are lost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics::Counter;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::kind::AlertKind;
use crate::webhooks::backoff::{Backoff, Next};

/// Alerts waiting per target; more are dropped (`herald_alerts_dropped_total`).
pub(crate) const QUEUE: usize = 256;
/// Longest one alert is retried before it is given up.
pub(crate) const RETRY_WINDOW: Duration = Duration::from_secs(600);
/// First retry delay (doubling, capped at 60 s, ±20 %).
const RETRY_INITIAL: Duration = Duration::from_secs(1);
/// One attempt's limit (connect and answer).
const TIMEOUT: Duration = Duration::from_secs(10);

/// The counters every delivery task shares.
pub(crate) struct DeliveryMetrics {
    /// By [`AlertKind::ALL`] position.
    pub sent: Vec<Counter>,
    pub failed: Counter,
}

/// One alert body on its way to one target.
pub(crate) struct Job {
    pub kind: AlertKind,
    pub body: String,
}

/// What a delivery task needs besides its queue.
pub(crate) struct Task {
    /// `alerts[i]`, for the log.
    pub name: String,
    pub url: String,
    pub client: reqwest::Client,
    pub backoff: Backoff,
    pub metrics: Arc<DeliveryMetrics>,
}

/// The HTTP client every target shares (its own connection pool per host).
pub(crate) fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client for alerts: {e}"))
}

/// The production retry schedule.
pub(crate) fn backoff() -> Backoff {
    Backoff::webhooks(RETRY_INITIAL, RETRY_WINDOW).expect("constant schedule is valid")
}

/// A target's queue: the sender `Alerts::emit` uses and the receiver its task reads.
pub(crate) fn queue() -> (mpsc::Sender<Job>, mpsc::Receiver<Job>) {
    mpsc::channel(QUEUE)
}

impl Task {
    /// Delivers the queue's alerts one after the other until `stop` (or until every sender is gone).
    pub(crate) async fn run(self, mut jobs: mpsc::Receiver<Job>, stop: CancellationToken) {
        loop {
            let job = tokio::select! {
                () = stop.cancelled() => return,
                job = jobs.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
            };
            if stop.run_until_cancelled(self.deliver(&job)).await.is_none() {
                return;
            }
        }
    }

    /// One alert: attempts until a 2xx or the end of the retry window.
    async fn deliver(&self, job: &Job) {
        let first = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self.post(&job.body).await {
                Ok(()) => {
                    self.metrics.sent[job.kind as usize].increment(1);
                    return;
                }
                Err(e) => e,
            };
            match self.backoff.next(attempt, first.elapsed()) {
                Next::RetryAfter(delay) => {
                    tracing::debug!(target_name = %self.name, attempt, %error, "alert not delivered; retrying");
                    tokio::time::sleep(delay).await;
                }
                Next::GiveUp => {
                    self.metrics.failed.increment(1);
                    tracing::warn!(
                        alert = job.kind.name(),
                        attempts = attempt,
                        %error,
                        "alert to {} given up after {:?} of retries (herald_alerts_failed_total)",
                        self.name,
                        first.elapsed()
                    );
                    return;
                }
            }
        }
    }

    async fn post(&self, body: &str) -> Result<(), String> {
        let res = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| if e.is_timeout() { "timed out".to_owned() } else { error_chain(&e.without_url()) })?;
        let status = res.status();
        let _ = res.bytes().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", status.as_u16()))
        }
    }
}

/// `error: cause: cause` (reqwest's Display hides the root cause), without the URL.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_alert_that_never_gets_through_is_given_up_and_counted_after_the_window() {
        let recorder = Arc::new(metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        let m = herald_core::metrics::Metrics::new(recorder);
        let metrics = Arc::new(DeliveryMetrics {
            sent: AlertKind::ALL
                .iter()
                .map(|k| m.labelled_counter("herald_alerts_sent_total", "event", k.name()))
                .collect(),
            failed: m.counter("herald_alerts_failed_total"),
        });
        // Nothing listens on port 1: every attempt fails at once.
        let backoff = Backoff::new(Duration::from_millis(5), Duration::from_millis(5), 0.0, Duration::from_millis(60));
        let task = Task {
            name: "alerts[0]".into(),
            url: "http://127.0.0.1:1/".into(),
            client: client().unwrap(),
            backoff: backoff.unwrap(),
            metrics,
        };
        let (tx, rx) = queue();
        tx.try_send(Job { kind: AlertKind::NodeLost, body: "{}".into() }).unwrap();
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), task.run(rx, CancellationToken::new())).await.unwrap();
        let text = handle.render();
        assert!(text.contains("herald_alerts_failed_total 1"), "{text}");
        assert!(!text.contains("herald_alerts_sent_total{event=\"node_lost\"} 1"), "{text}");
    }
}
