//! `GET /console/apps/{app_id}/stream`: the live debug log of one app as server-sent events.
//!
//! The stream opens with a comment (`: connected`), then sends each entry the tap records for
//! the app as `data: <entry JSON>`, and a `: ping` comment every [`PING`] (which also finds a
//! client that went away: the write fails and the stream, with its `Watch`, is dropped). A
//! console that falls more than `tap::RING` entries behind gets `event: dropped` and the
//! stream ends; the page reconnects. At most [`super::MAX_STREAMS`] streams are open on a node
//! (503 beyond); every stream ends when the server shuts down.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::api::error;
use super::auth::console;
use super::routes::app_exists;
use super::tap::{Dropped, Watch};
use crate::server::ServerState;

/// Time between two `: ping` comments.
pub(crate) const PING: Duration = Duration::from_secs(15);

/// What one open stream holds: dropped with the response body.
struct Open {
    watch: Watch,
    /// Its share of [`super::MAX_STREAMS`].
    _permit: OwnedSemaphorePermit,
    ping: tokio::time::Interval,
    closing: CancellationToken,
    /// The first chunk (`: connected`) is sent; after `dropped` nothing more is.
    started: bool,
    ended: bool,
}

/// What to send next, or `None` once the stream is over.
async fn next_chunk(open: &mut Open) -> Option<Bytes> {
    if open.ended {
        return None;
    }
    if !open.started {
        open.started = true;
        return Some(Bytes::from_static(b"retry: 2000\n: connected\n\n"));
    }
    tokio::select! {
        entry = open.watch.recv() => match entry {
            Ok(entry) => {
                let json = serde_json::to_string(&*entry).unwrap_or_else(|_| "{}".into());
                Some(Bytes::from(format!("data: {json}\n\n")))
            }
            Err(Dropped) => {
                open.ended = true;
                Some(Bytes::from_static(b"event: dropped\ndata: {}\n\n"))
            }
        },
        _ = open.ping.tick() => Some(Bytes::from_static(b": ping\n\n")),
        () = open.closing.cancelled() => None,
    }
}

pub(crate) async fn open(State(state): State<Arc<ServerState>>, Path(app_id): Path<String>) -> Response {
    if !app_exists(&state, &app_id).await {
        return error(StatusCode::NOT_FOUND, format!("Unknown app: {app_id}"));
    }
    let console = console(&state);
    let Ok(permit) = console.streams.clone().try_acquire_owned() else {
        let message = format!("Too many live logs open on this node (at most {})", super::MAX_STREAMS);
        let mut res = error(StatusCode::SERVICE_UNAVAILABLE, message);
        res.headers_mut().insert(header::RETRY_AFTER, 5.into());
        return res;
    };
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING, PING);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let open = Open {
        watch: state.console_tap.watch(&app_id),
        _permit: permit,
        ping,
        closing: console.closing.clone(),
        started: false,
        ended: false,
    };
    let stream = futures_util::stream::unfold(open, |mut open| async move {
        next_chunk(&mut open).await.map(|chunk| (Ok::<_, Infallible>(chunk), open))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::tap::{Entry, EntryKind, Tap, RING};

    /// An open stream whose first ping is due `first_ping` from now.
    fn open(tap: &Arc<Tap>, closing: &CancellationToken, first_ping: Duration) -> Open {
        let permit = Arc::new(tokio::sync::Semaphore::new(1)).try_acquire_owned().unwrap();
        Open {
            watch: tap.watch("a"),
            _permit: permit,
            ping: tokio::time::interval_at(tokio::time::Instant::now() + first_ping, PING),
            closing: closing.clone(),
            started: false,
            ended: false,
        }
    }

    fn text(b: Option<Bytes>) -> String {
        String::from_utf8(b.expect("a chunk").to_vec()).unwrap()
    }

    #[tokio::test]
    async fn entries_become_data_lines_and_the_watch_closes_with_the_stream() {
        let tap = Arc::new(Tap::default());
        let closing = CancellationToken::new();
        let mut o = open(&tap, &closing, PING);
        assert!(text(next_chunk(&mut o).await).contains(": connected"));
        tap.record("a", || Entry::new(EntryKind::ApiMessage).channel("room").event("hello"));
        let chunk = text(next_chunk(&mut o).await);
        let json: serde_json::Value = serde_json::from_str(chunk.strip_prefix("data: ").unwrap().trim()).unwrap();
        assert_eq!((json["kind"].as_str(), json["event"].as_str()), (Some("api_message"), Some("hello")));
        drop(o);
        assert!(!tap.watching("a"), "dropping the stream dropped its watch");
    }

    #[tokio::test]
    async fn a_quiet_stream_pings_and_a_slow_one_is_told_it_was_dropped() {
        let tap = Arc::new(Tap::default());
        let closing = CancellationToken::new();
        let mut o = open(&tap, &closing, Duration::ZERO);
        next_chunk(&mut o).await;
        assert_eq!(text(next_chunk(&mut o).await), ": ping\n\n");
        for _ in 0..RING + 1 {
            tap.record("a", || Entry::new(EntryKind::Subscribed));
        }
        assert_eq!(text(next_chunk(&mut o).await), "event: dropped\ndata: {}\n\n");
        assert!(next_chunk(&mut o).await.is_none());
        let mut o = open(&tap, &closing, PING);
        next_chunk(&mut o).await;
        closing.cancel();
        assert!(next_chunk(&mut o).await.is_none(), "shutdown ends the stream");
    }
}
