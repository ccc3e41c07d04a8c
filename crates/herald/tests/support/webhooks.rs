//! Helpers for the webhooks_* tests: a local webhook receiver that records every request, and
//! a config reporting webhooks to it with short delays.

use std::net::SocketAddr;
use std::time::Duration;

use herald::config::Config;
use serde_json::Value;

use super::{eventually, temp_data_dir, test_config, APP_ID};

/// One request received by a [`WebhookReceiver`].
#[derive(Debug, Clone)]
pub(crate) struct WebhookHit {
    /// Header names lower-cased.
    pub headers: std::collections::HashMap<String, String>,
    pub body: String,
    /// What the receiver answered.
    pub status: u16,
}

impl WebhookHit {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("webhook body is JSON")
    }
}

/// Receiver behaviour, shared with its handler. A mutex: tests flip it while requests run.
struct ReceiverState {
    hits: std::sync::Mutex<Vec<WebhookHit>>,
    status: std::sync::atomic::AtomicU16,
    hang: std::sync::atomic::AtomicBool,
}

/// A local webhook endpoint on 127.0.0.1:0 that records every request. Answers `status`
/// (200 by default) or, with `hang`, never answers.
#[derive(Clone)]
pub(crate) struct WebhookReceiver {
    pub addr: SocketAddr,
    state: std::sync::Arc<ReceiverState>,
}

impl WebhookReceiver {
    pub(crate) async fn start() -> WebhookReceiver {
        use axum::extract::State;
        use std::sync::atomic::Ordering;
        let state = std::sync::Arc::new(ReceiverState {
            hits: Default::default(),
            status: std::sync::atomic::AtomicU16::new(200),
            hang: Default::default(),
        });
        async fn hook(
            State(st): State<std::sync::Arc<ReceiverState>>,
            headers: axum::http::HeaderMap,
            body: String,
        ) -> axum::http::StatusCode {
            if st.hang.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            let status = st.status.load(Ordering::SeqCst);
            let headers =
                headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
            st.hits.lock().unwrap().push(WebhookHit { headers, body, status });
            axum::http::StatusCode::from_u16(status).unwrap()
        }
        let app = axum::Router::new().route("/hook", axum::routing::post(hook)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        WebhookReceiver { addr, state }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub(crate) fn set_status(&self, status: u16) {
        self.state.status.store(status, std::sync::atomic::Ordering::SeqCst);
    }

    pub(crate) fn set_hang(&self, hang: bool) {
        self.state.hang.store(hang, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every request so far, including failed ones.
    pub(crate) fn hits(&self) -> Vec<WebhookHit> {
        self.state.hits.lock().unwrap().clone()
    }

    /// Requests answered with a 2xx.
    pub(crate) fn delivered(&self) -> Vec<WebhookHit> {
        self.hits().into_iter().filter(|h| (200..300).contains(&h.status)).collect()
    }

    /// The events of every delivered request, in arrival order.
    pub(crate) fn events(&self) -> Vec<Value> {
        self.delivered().iter().flat_map(|h| h.json()["events"].as_array().cloned().unwrap_or_default()).collect()
    }

    /// Waits until `n` events were delivered; returns them. Panics after `within`.
    pub(crate) async fn wait_events(&self, n: usize, within: Duration) -> Vec<Value> {
        let ok = eventually(within, || self.events().len() >= n).await;
        let events = self.events();
        assert!(ok, "expected {n} webhook events within {within:?}, got {}: {events:#?}", events.len());
        events
    }
}

/// `test_config()` with one webhook target (all `event_types`) on the standard app, short
/// delays (removal 300 ms, retries from 50 ms) and a temp `data_dir`.
pub(crate) fn webhook_config(url: &str, event_types: &[&str], data_dir: &str) -> Config {
    use herald::webhooks::config::{AppWebhooks, WebhookTarget};
    use herald_core::events::EventKind;
    let mut c = test_config();
    let mask = event_types.iter().map(|t| EventKind::parse(t).unwrap_or_else(|| panic!("unknown event type {t}")));
    let mask = mask.collect();
    let target = WebhookTarget { url: url.to_owned(), event_types: mask, filter: Default::default(), headers: vec![] };
    c.webhooks.insert(APP_ID.to_owned(), AppWebhooks { batch: false, targets: vec![target], ..Default::default() });
    c.data_dir = temp_data_dir(data_dir);
    c.webhook_removal_delay_ms = 300;
    c.webhook_retry_initial_ms = 50;
    c.webhook_batch_ms = 20;
    c
}

/// Names of events, for compact assertions.
pub(crate) fn names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{}:{}", e["name"].as_str().unwrap_or("?"), e["channel"].as_str().unwrap_or("?")))
        .collect()
}
