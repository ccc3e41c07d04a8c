//! The accept loops: herald's own replacement for `axum::serve`, bounding what a client can hold
//! before it has been answered.
//!
//! - a connection that has not yet been answered once (no HTTP response, no WebSocket
//!   handshake) holds a permit of `max_pending_connections`; over it a new connection gets a
//!   best-effort 503 and is closed at once (`herald_http_connections_refused_total`);
//! - the main listener accepts only while the open file descriptors stay below
//!   `RLIMIT_NOFILE - fd_reserve` (`fds.rs`); the rest wait in the kernel's accept queue;
//! - an `accept()` error other than a per-connection one (EMFILE, ENFILE, ENOBUFS…) is counted
//!   and retried after a doubling back-off (5 ms to 1 s), never in a spin and never fatal;
//! - each connection is served by `conn.rs` (the TLS handshake with `[tls]`, timeouts,
//!   keep-alive, upgrades, graceful stop).
//!
//! The optional metrics listener (`metrics_port`) uses the same loop with its own small cap, held for
//! each connection's whole life, and ignores the fd reserve: the reserve is what it runs on. It
//! always serves plain HTTP (Prometheus scrapes it on a private address).

mod conn;
pub(crate) mod fds;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use metrics::Counter;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) use conn::{OverTls, Timeouts};
use fds::{Counted, FdBudget};

use crate::tls::Tls;

/// Connections the metrics listener serves at once (from the fd reserve).
pub(crate) const METRICS_MAX_CONNECTIONS: usize = 16;
/// How often a paused main listener checks whether descriptors were freed.
const PAUSE_POLL: Duration = Duration::from_millis(50);
/// First and longest wait after an `accept()` error.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Sent (best effort, without waiting) to a connection over the pending cap.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n\
Content-Length: 26\r\nRetry-After: 1\r\n\r\nToo many pending requests\n";

/// How one listener serves.
#[derive(Clone)]
pub(crate) struct Options {
    pub timeouts: Timeouts,
    /// Connections not yet answered once (or, with `hold_permit`, open) at a time.
    pub max_pending: usize,
    /// Keep a connection's permit for its whole life (the metrics listener), not only until its
    /// first answer.
    pub hold_permit: bool,
    /// Pause accepting while the fd budget has no headroom (the main listener).
    pub respect_fd_reserve: bool,
    /// TLS termination (the main listener with `[tls]`).
    pub tls: Option<Arc<Tls>>,
}

/// The accept loops' counters (registered once on the server's recorder).
#[derive(Clone)]
pub(crate) struct ServeMetrics {
    /// `herald_http_connections_refused_total{listener}`: over the pending cap.
    pub refused: Counter,
    /// `herald_http_header_timeouts_total`: connections ended by the header-read timeout.
    pub header_timeouts: Counter,
    /// `herald_accept_errors_total`: failed `accept()` calls (EMFILE…), each followed by a back-off.
    pub accept_errors: Counter,
    /// `herald_accept_paused_total`: times the main listener paused for the fd reserve.
    pub paused: Counter,
}

/// Accepts on `listener` until `stop`, serving each connection with `router` on `tasks`, over
/// TLS when `options.tls` is set.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    router: Router,
    options: Options,
    budget: Arc<FdBudget>,
    metrics: ServeMetrics,
    tasks: TaskTracker,
    stop: CancellationToken,
) {
    // A plain 503 means nothing to a client expecting a TLS record: it is only closed.
    let busy_answer = options.tls.is_none();
    // Permits of connections not yet answered; see `conn.rs` for when one is released.
    let pending = Arc::new(Semaphore::new(options.max_pending));
    let mut backoff = BACKOFF_MIN;
    let mut paused = false;
    let cx = conn::Context {
        router,
        timeouts: options.timeouts,
        hold_permit: options.hold_permit,
        header_timeouts: metrics.header_timeouts.clone(),
        stop: stop.clone(),
        tls: options.tls,
    };
    loop {
        if options.respect_fd_reserve && !budget.has_headroom() {
            if !paused {
                paused = true;
                metrics.paused.increment(1);
                tracing::warn!(
                    open_fds = budget.open(),
                    "open files within fd_reserve of RLIMIT_NOFILE: pausing accepts"
                );
            }
            tokio::select! {
                () = tokio::time::sleep(PAUSE_POLL) => continue,
                () = stop.cancelled() => return,
            }
        }
        if paused {
            paused = false;
            tracing::info!(open_fds = budget.open(), "accepting again");
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(ok) => {
                backoff = BACKOFF_MIN;
                ok
            }
            // The peer gave up before we accepted: nothing wrong with the listener.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                metrics.accept_errors.increment(1);
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "accept failed");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stop.cancelled() => return,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        // TCP_NODELAY: small frames must not wait for the peer's delayed ACK (Nagle); measured
        // in docs/BENCHMARKS.md (client-event p99 33 ms → 3 ms).
        let _ = stream.set_nodelay(true);
        let stream = budget.track(stream);
        match pending.clone().try_acquire_owned() {
            Ok(permit) => {
                tasks.spawn(conn::serve(stream, peer, permit, cx.clone()));
            }
            Err(_) => refuse(stream, &metrics.refused, busy_answer),
        }
    }
}

/// Over the pending cap: a 503 if the socket takes it without waiting (plain HTTP only), then
/// closed.
fn refuse(stream: Counted, refused: &Counter, answer: bool) {
    refused.increment(1);
    if answer {
        let _ = stream.try_write(BUSY);
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}
