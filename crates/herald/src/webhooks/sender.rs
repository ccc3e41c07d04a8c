//! One HTTP POST of a webhook body (PROTOCOL.md 11.2), with reqwest (rustls + ring, no C).
//!
//! Headers: `Content-Type: application/json` exactly (pusher-http-node parses the body only
//! then), `X-Pusher-Key`, `X-Pusher-Signature` (hex HMAC-SHA256 of the exact body bytes with
//! the app secret), then the target's extra headers. Header names go out title-cased
//! (`X-Pusher-Key`, not `x-pusher-key`) for frameworks that look them up case-sensitively.
//! Success is any 2xx; anything else, a connection error or the timeout is a [`SendError`].

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};

use super::payload::signature;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("HTTP {0}")]
    Status(u16),
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Request(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// The target's app is not (or no longer) known: nothing to sign with.
    #[error("app {0} is not configured")]
    UnknownApp(String),
}

/// Where to POST: a target's URL and its extra headers. The app's key and secret are passed
/// per request ([`Sender::send`]), looked up when the attempt is made, so a changed secret
/// signs the next attempt.
#[derive(Debug, Clone)]
pub(super) struct Destination {
    pub url: String,
    pub extra_headers: HeaderMap,
}

/// A shared HTTP client (connection pool) with the webhook timeout.
#[derive(Debug, Clone)]
pub(super) struct Sender {
    client: reqwest::Client,
}

impl Sender {
    pub(super) fn new(timeout: Duration) -> Result<Self, SendError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .http1_title_case_headers()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SendError::Client(e.to_string()))?;
        Ok(Sender { client })
    }

    /// POSTs `body` to `dest`, signed with the app's `key` and `secret`; `Ok` on any 2xx.
    pub(super) async fn send(&self, dest: &Destination, key: &str, secret: &str, body: &str) -> Result<(), SendError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(HeaderName::from_static("x-pusher-key"), value(key)?);
        headers.insert(HeaderName::from_static("x-pusher-signature"), value(&signature(secret, body.as_bytes()))?);
        for (k, v) in &dest.extra_headers {
            headers.insert(k.clone(), v.clone());
        }
        let res = self.client.post(&dest.url).headers(headers).body(body.to_owned()).send().await.map_err(|e| {
            if e.is_timeout() {
                SendError::Timeout
            } else {
                SendError::Request(error_chain(&e))
            }
        })?;
        let status = res.status();
        // Drain (a little of) the body so the connection can be reused.
        let _ = res.bytes().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(SendError::Status(status.as_u16()))
        }
    }
}

fn value(s: &str) -> Result<HeaderValue, SendError> {
    HeaderValue::from_str(s).map_err(|_| SendError::Request(format!("invalid header value {s:?}")))
}

/// `error: cause: cause`, since reqwest's Display hides the root cause.
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
