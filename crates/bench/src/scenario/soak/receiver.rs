//! The webhook receiver of the `soak` scenario: a plain HTTP/1.1 server on loopback that
//! answers every third request with 500 (deterministically: requests 3, 6, 9, ... in arrival
//! order) and the others with 200, so herald's retries and its outbox are exercised for the
//! whole run. It checks each request's `X-Pusher-Signature` (docs/WEBHOOKS.md) and counts the
//! events of the requests it accepted, by name.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::sign;

/// What the receiver saw.
#[derive(Default)]
pub(crate) struct Received {
    pub requests: AtomicU64,
    /// Requests answered 500 (every third).
    pub refused: AtomicU64,
    /// Requests whose signature did not match the app secret.
    pub bad_signature: AtomicU64,
    /// Events of the accepted (200) requests, by name. A plain mutex: held only to bump one
    /// counter, never across an await.
    pub events: Mutex<BTreeMap<String, u64>>,
}

impl Received {
    pub(crate) fn events(&self) -> BTreeMap<String, u64> {
        self.events.lock().expect("receiver lock").clone()
    }
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    name: String,
}

/// Binds `addr` and serves until the process ends.
pub(crate) async fn start(addr: SocketAddr, secret: String) -> std::io::Result<Arc<Received>> {
    let listener = TcpListener::bind(addr).await?;
    let seen = Arc::new(Received::default());
    let out = seen.clone();
    let secret: Arc<str> = secret.into();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (seen, secret) = (seen.clone(), secret.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(req, seen.clone(), secret.clone()));
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    Ok(out)
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    seen: Arc<Received>,
    secret: Arc<str>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let signature = req.headers().get("x-pusher-signature").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let n = seen.requests.fetch_add(1, Ordering::Relaxed) + 1;
    if signature.as_deref() != Some(sign::webhook_signature(&secret, &body).as_str()) {
        seen.bad_signature.fetch_add(1, Ordering::Relaxed);
    }
    let status = if n.is_multiple_of(3) {
        seen.refused.fetch_add(1, Ordering::Relaxed);
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        if let Ok(b) = serde_json::from_slice::<Body>(&body) {
            let mut events = seen.events.lock().expect("receiver lock");
            for e in b.events {
                *events.entry(e.name).or_default() += 1;
            }
        }
        StatusCode::OK
    };
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    Ok(resp)
}
