//! One accepted connection: hyper's HTTP/1.1 server (WebSocket upgrades included) with the
//! header-read timeout, the keep-alive idle timeout, the pending-connection permit and graceful
//! shutdown.
//!
//! - Header read (`http_header_read_timeout`): hyper's own timer. It runs whenever the
//!   connection waits for a request head — from the accept, and again from each response — and
//!   ends the connection when the head is not complete in time (a header trickled byte by byte,
//!   a socket that never sends).
//! - Keep-alive (`http_keep_alive_timeout`): here. While no request is in progress the
//!   connection may sit idle this long; then it is shut down gracefully: hyper closes it at once
//!   when it is between requests or has not sent a byte yet, finishes a response in progress
//!   first, and leaves a request head already begun to the header-read timeout.
//! - After a WebSocket upgrade hyper hands the socket over and this task ends: the WebSocket
//!   is governed by the Pusher activity timeout from then on, not by these.
//! - TLS (`[tls]`): the handshake runs here first, inside this task and under the header-read
//!   timeout, while the connection holds its pending permit, so a client that connects and
//!   never finishes its handshake is closed in seconds and counts against
//!   `max_pending_connections`. A failed or timed-out handshake is counted
//!   (`herald_tls_handshake_failures_total`) and logged at debug only: any client can cause
//!   one. Every request of a TLS connection carries [`OverTls`], which makes its WebSocket
//!   `secure` for `force_tls` apps.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics::Counter;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::Service;

use super::fds::Counted;
use crate::tls::Tls;

/// A request extension: the request arrived over herald's own TLS (not through a proxy).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverTls;

/// The per-connection timeouts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub header_read: Duration,
    pub keep_alive: Duration,
}

/// What every connection of one listener is served with.
#[derive(Clone)]
pub(crate) struct Context {
    pub router: Router,
    pub timeouts: Timeouts,
    /// Keep the pending permit for the connection's whole life (see [`Activity::permit`]).
    pub hold_permit: bool,
    /// `herald_http_header_timeouts_total`.
    pub header_timeouts: Counter,
    /// Cancelled by the last shutdown step: every connection finishes gracefully.
    pub stop: CancellationToken,
    /// TLS termination (the main listener with `[tls]`); `None`: plain HTTP.
    pub tls: Option<Arc<Tls>>,
}

/// What the connection task and the requests it serves share.
struct Activity {
    accepted: Instant,
    /// Requests in progress. Atomic: changed by the request futures, read by the idle timer.
    busy: AtomicUsize,
    /// Milliseconds after `accepted` when the last response was produced. Atomic, as `busy`.
    idle_since_ms: AtomicU64,
    /// The pending-connection permit: released with the first response (an HTTP answer or the
    /// 101 of a WebSocket handshake), or with the connection. `hold` keeps it for the whole
    /// connection instead (the metrics listener caps connections, not only pending ones). Mutex:
    /// taken once, by the first response; never held across an await.
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    hold: bool,
}

impl Activity {
    fn idle_since(&self) -> Instant {
        self.accepted + Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed))
    }
}

/// Marks a request in progress; dropped with the request future (answered or abandoned).
struct InProgress(Arc<Activity>);

impl InProgress {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.busy.fetch_add(1, Ordering::Relaxed);
        InProgress(activity.clone())
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        let a = &self.0;
        let ms = u64::try_from(a.accepted.elapsed().as_millis()).unwrap_or(u64::MAX);
        a.idle_since_ms.store(ms, Ordering::Relaxed);
        a.busy.fetch_sub(1, Ordering::Relaxed);
        if !a.hold {
            a.permit.lock().take();
        }
    }
}

/// Serves `stream` (after the TLS handshake, with `[tls]`) until the client closes it, a
/// timeout ends it, it is upgraded to a WebSocket, or `stop` asks every connection to finish
/// (graceful: a request in progress is answered first).
pub(crate) async fn serve(stream: Counted, peer: SocketAddr, permit: OwnedSemaphorePermit, cx: Context) {
    let Some(tls) = cx.tls.clone() else {
        return serve_http(stream, peer, permit, None, cx).await;
    };
    // The handshake's own deadline is the header-read timeout; hyper's starts after it.
    let handshake = tokio::time::timeout(cx.timeouts.header_read, tls.acceptor().accept(stream));
    let result = tokio::select! {
        result = handshake => result,
        () = cx.stop.cancelled() => return,
    };
    match result {
        Ok(Ok(stream)) => serve_http(stream, peer, permit, Some(OverTls), cx).await,
        Ok(Err(e)) => {
            tls.metrics.handshake_failures.increment(1);
            tracing::debug!(error = %e, %peer, "TLS handshake failed");
        }
        Err(_) => {
            tls.metrics.handshake_failures.increment(1);
            cx.header_timeouts.increment(1);
            tracing::debug!(%peer, "TLS handshake not finished within http_header_read_timeout");
        }
    }
}

/// HTTP/1.1 on `stream` (plain, or a finished TLS session when `over_tls` is set).
async fn serve_http<I>(
    stream: I,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    over_tls: Option<OverTls>,
    cx: Context,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Context { router, timeouts, hold_permit, header_timeouts, stop, tls: _ } = cx;
    let activity = Arc::new(Activity {
        accepted: Instant::now(),
        busy: AtomicUsize::new(0),
        idle_since_ms: AtomicU64::new(0),
        permit: Mutex::new(Some(permit)),
        hold: hold_permit,
    });
    let shared = activity.clone();
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        // The peer address reaches the handlers as axum's `ConnectInfo` (`trusted_proxies` is
        // checked against it).
        req.extensions_mut().insert(ConnectInfo(peer));
        if let Some(over_tls) = over_tls {
            req.extensions_mut().insert(over_tls);
        }
        let in_progress = InProgress::start(&shared);
        let mut router = router.clone();
        async move {
            let response = router.call(req).await;
            drop(in_progress);
            Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(timeouts.header_read);
    let conn = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
    tokio::pin!(conn);

    // Until shutdown is asked for: the connection, the idle timer and `stop` race.
    let result = loop {
        let deadline = if activity.busy.load(Ordering::Relaxed) > 0 {
            Instant::now() + timeouts.keep_alive
        } else {
            activity.idle_since() + timeouts.keep_alive
        };
        tokio::select! {
            result = conn.as_mut() => break result,
            () = tokio::time::sleep_until(deadline) => {
                let idle = activity.busy.load(Ordering::Relaxed) == 0
                    && activity.idle_since() + timeouts.keep_alive <= Instant::now();
                if idle {
                    conn.as_mut().graceful_shutdown();
                    break conn.as_mut().await;
                }
            }
            () = stop.cancelled() => {
                conn.as_mut().graceful_shutdown();
                break conn.as_mut().await;
            }
        }
    };
    if let Err(e) = result {
        if e.is_timeout() {
            header_timeouts.increment(1);
        }
        tracing::debug!(error = %e, %peer, "HTTP connection ended with an error");
    }
}
