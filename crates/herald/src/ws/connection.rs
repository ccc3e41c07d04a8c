//! The task that owns one WebSocket.
//!
//! [`ConnectionTask`] is a hand-written future rather than an `async fn` with a `select!`,
//! because of its size: it lives for the whole connection, once per socket, and it is most of
//! herald's memory per idle connection. The `async fn` version compiled to a 2,392-byte state
//! machine (both timers, every branch's nested future and copies of its arguments side by
//! side); this struct is about a third of that (see docs/BENCHMARKS.md). It also keeps one
//! timer for everything, re-armed lazily, instead of one per deadline.
//!
//! Each poll does, in this order (the order of the former biased `select!`):
//! 1. finish a subscription that waits for the cluster ([`Adapter::prepare`]); while one waits,
//!    nothing more is read, so the client's frames are handled in the order it sent them;
//! 2. move queued frames from the outbox to the socket (at most [`BATCH`] per turn, then flush);
//!    frames are only ever written whole, by tungstenite's buffered sink;
//! 3. read and handle inbound frames (at most [`READ_BUDGET`] per turn);
//! 4. the timer: liveness, the authorization deadline, a write that cannot make progress.
//!
//! Liveness (PROTOCOL.md 2.7): any inbound frame is activity. After `activity_timeout` of
//! silence the server sends a WS Ping and a `pusher:ping`; if nothing arrives within
//! `pong_timeout` the connection is closed with 4201.
//!
//! Slow consumers: the outbox is bounded (see `herald_core::outbox`); a socket write that
//! cannot make progress for [`WRITE_TIMEOUT`] drops the connection.
//!
//! [`Adapter::prepare`]: herald_core::adapter::Adapter::prepare

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, SinkExt, StreamExt};
use herald_core::adapter::BoxFuture;
use herald_core::connection::Connection;
use herald_core::metrics::Metrics;
use herald_core::outbox::Popped;
use herald_core::session::{Pending, Session};
use herald_protocol::codes::CloseCode;
use herald_protocol::outbound;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use tokio::time::{timeout, Instant, Sleep};
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode as WsCloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame, Utf8Bytes};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::console::tap::{Entry, EntryKind};
use crate::log_limit::LogLimit;
use crate::server::ServerState;

type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// How long a write may make no progress before the peer is considered gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames written per turn before flushing and letting the read side and other tasks run.
const BATCH: usize = 64;
/// Inbound frames handled per turn before the task yields.
const READ_BUDGET: usize = 32;
/// Write/read rounds per poll before the task yields to the runtime.
const ROUNDS: usize = 4;

/// Why the connection ended.
enum End {
    /// The socket failed: nothing more can be sent.
    Gone,
    /// The peer sent its close frame (with this code, if any): tungstenite queued the reply
    /// (echoing its code, or 1002 for a code a peer may not send), which is flushed before the
    /// socket is dropped.
    PeerClosed(Option<u16>),
    /// herald closes with this code, after a `pusher:error` carrying the same code.
    Close(CloseCode, String),
}

/// Runs an admitted connection until it ends, on the server's socket tracker. The session is
/// dropped (which unsubscribes and unregisters it) as soon as the connection ends; a close
/// handshake, if herald is the one closing, then runs in its own short-lived task on the same
/// tracker.
pub(crate) fn spawn(ws: Ws, session: Session, state: Arc<ServerState>) {
    let conn = session.connection();
    state
        .console_tap
        .record(&session.app().id, || Entry::new(EntryKind::ConnectionOpened).socket(&*conn.socket_id_str));
    let sockets = state.sockets.clone();
    sockets.spawn(ConnectionTask::new(ws, session, state));
}

/// Sends the close frame (after a `pusher:error`) and waits briefly for the peer's reply.
async fn close_connection(mut ws: Ws, code: CloseCode, message: String, state: Arc<ServerState>, socket_id: Box<str>) {
    state.hub.metrics.closed_by_server(code);
    if code == CloseCode::OVER_CAPACITY {
        // Any client can become a slow consumer on purpose: one line per 10 s with a count.
        static SLOW: LazyLock<LogLimit> = LazyLock::new(|| LogLimit::new(Duration::from_secs(10)));
        match SLOW.admit() {
            Some(0) => tracing::info!(%socket_id, "slow consumer disconnected"),
            Some(more) => tracing::info!(
                %socket_id,
                "slow consumer disconnected ({more} more since the previous line; herald_slow_consumer_disconnects_total counts all)"
            ),
            None => tracing::debug!(%socket_id, "slow consumer disconnected"),
        }
    }
    close_with(&mut ws, code, &message).await;
}

pin_project! {
    /// One live connection: its socket, its session and its single timer (see the module doc).
    #[project = TaskProj]
    pub(crate) struct ConnectionTask {
        // `Some` until the future completes: the session is dropped at the end, the socket is
        // handed to the close handshake.
        ws: Option<Ws>,
        session: Option<Session>,
        state: Arc<ServerState>,
        // The one timer, armed at the earliest of the deadlines below (re-armed lazily: when
        // activity pushes the liveness deadline later, the timer fires early and is moved on).
        #[pin]
        timer: Sleep,
        last_activity: Instant,
        // When the server's ping went out (liveness probe in progress).
        ping_sent: Option<Instant>,
        // `require_authorized_connections`: close with 4009 unless authorized by then.
        auth_deadline: Option<Instant>,
        // Set while a write or flush cannot make progress.
        write_deadline: Option<Instant>,
        // A subscription or sign-in waiting for the cluster before it completes.
        preparing: Option<Box<(Pending, BoxFuture<()>)>>,
        // Frames were handed to tungstenite since the last completed flush.
        unflushed: bool,
        // The liveness probe's WS Ping is still to be written.
        ws_ping_due: bool,
    }
}

impl ConnectionTask {
    fn new(ws: Ws, session: Session, state: Arc<ServerState>) -> Self {
        let now = Instant::now();
        let auth_deadline = session
            .app()
            .limits
            .require_authorized_connections
            .then(|| now + Duration::from_secs(state.config.authorized_connection_timeout));
        let activity = Duration::from_secs(state.config.activity_timeout);
        ConnectionTask {
            ws: Some(ws),
            session: Some(session),
            timer: tokio::time::sleep_until(auth_deadline.map_or(now + activity, |d| d.min(now + activity))),
            state,
            last_activity: now,
            ping_sent: None,
            auth_deadline,
            write_deadline: None,
            preparing: None,
            unflushed: false,
            ws_ping_due: false,
        }
    }
}

impl Future for ConnectionTask {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let end = ready!(this.poll_turn(cx));
        let Some(session) = this.session.take() else { return Poll::Ready(()) };
        let code = match &end {
            End::Gone => None,
            End::PeerClosed(code) => *code,
            End::Close(code, _) => Some(code.get()),
        };
        this.state.console_tap.record(&session.app().id, || {
            let closed = Entry::new(EntryKind::ConnectionClosed).socket(&*session.connection().socket_id_str);
            match code {
                Some(code) => closed.code(code),
                None => closed,
            }
        });
        let mut peer_closed = None;
        let closing = match (end, this.ws.take()) {
            (End::Close(code, message), Some(ws)) => {
                Some((ws, code, message, session.connection().socket_id_str.clone()))
            }
            (End::PeerClosed(_), Some(ws)) => {
                peer_closed = Some(ws);
                None
            }
            _ => None,
        };
        // Clean up first (presence removals must not wait on a slow close handshake).
        drop(session);
        if let Some(ws) = peer_closed {
            this.state.sockets.spawn(answer_close(ws));
        }
        if let Some((ws, code, message, socket_id)) = closing {
            // Spawned while this task is still tracked, so the tracker never looks empty
            // before the close frame is written.
            let state = this.state.clone();
            this.state.sockets.spawn(close_connection(ws, code, message, state, socket_id));
        }
        Poll::Ready(())
    }
}

impl TaskProj<'_> {
    fn poll_turn(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        let (Some(ws), Some(session)) = (self.ws.as_mut(), self.session.as_mut()) else {
            return Poll::Ready(End::Gone);
        };
        let metrics = &self.state.hub.metrics;
        let mut rounds = 0;
        loop {
            // 1. A subscription waiting for the cluster.
            if let Some(p) = self.preparing {
                if p.1.as_mut().poll(cx).is_ready() {
                    if let Some(p) = self.preparing.take() {
                        session.finish(p.0);
                    }
                }
            }
            // 2. Outbox → socket.
            let mut busy = false;
            match poll_write(ws, session.connection(), self.unflushed, self.ws_ping_due, metrics, cx) {
                Poll::Ready(Ok(Wrote::Idle)) => *self.write_deadline = None,
                Poll::Ready(Ok(Wrote::More)) => {
                    *self.write_deadline = None;
                    busy = true;
                }
                Poll::Ready(Ok(Wrote::Close(req))) => return Poll::Ready(End::Close(req.code, req.message)),
                Poll::Ready(Err(())) => return Poll::Ready(End::Gone),
                Poll::Pending => {
                    if self.write_deadline.is_none() {
                        *self.write_deadline = Some(Instant::now() + WRITE_TIMEOUT);
                    }
                }
            }
            // 3. Socket → session.
            let mut handled = 0;
            while self.preparing.is_none() && handled < READ_BUDGET {
                let msg = match ws.poll_next_unpin(cx) {
                    Poll::Pending => break,
                    Poll::Ready(None) => return Poll::Ready(End::Gone),
                    Poll::Ready(Some(msg)) => msg,
                };
                handled += 1;
                *self.last_activity = Instant::now();
                *self.ping_sent = None;
                match msg {
                    Ok(Message::Text(text)) => {
                        metrics.ws_messages_in.increment(1);
                        metrics.ws_bytes_in.increment(text.len() as u64);
                        if let Some(pending) = session.handle_text(&text) {
                            // Cluster mode: wait until the channel's cluster traffic reaches
                            // this node (bounded by the adapter) before joining.
                            match self.state.hub.adapter().prepare(&session.app().id, pending.channel()) {
                                Some(ready) => *self.preparing = Some(Box::new((pending, ready))),
                                None => session.finish(pending),
                            }
                        }
                    }
                    Ok(Message::Binary(_)) => {} // not part of the protocol: ignored (2.1)
                    // tungstenite queued the Pong; the write step pushes it out.
                    Ok(Message::Ping(_)) => *self.unflushed = true,
                    Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => {}
                    Ok(Message::Close(frame)) => return Poll::Ready(End::PeerClosed(frame.map(|f| u16::from(f.code)))),
                    Err(WsError::Capacity(_)) => {
                        return Poll::Ready(End::Close(CloseCode::MESSAGE_TOO_BIG, "Message too big".to_owned()))
                    }
                    // The client's TCP stream ended without a close frame (a killed tab, a lost
                    // network): the peer is gone, so this is not herald closing with 1002 and
                    // there is nobody to send a close frame to.
                    Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => {
                        return Poll::Ready(End::Gone)
                    }
                    // RFC 6455 7.4.1: fail the connection with a close frame, not a bare TCP close.
                    Err(WsError::Protocol(e)) => {
                        return Poll::Ready(End::Close(CloseCode::PROTOCOL_ERROR, format!("Protocol error: {e}")))
                    }
                    Err(WsError::Utf8(_)) => {
                        return Poll::Ready(End::Close(
                            CloseCode::INVALID_PAYLOAD,
                            "Text message is not valid UTF-8".to_owned(),
                        ))
                    }
                    Err(e) => {
                        tracing::debug!(socket_id = %session.connection().socket_id_str, error = %e, "websocket read error");
                        return Poll::Ready(End::Gone);
                    }
                }
            }
            if !busy && handled == 0 {
                break;
            }
            rounds += 1;
            if rounds == ROUNDS {
                // Plenty left to do: let other connections run first.
                cx.waker().wake_by_ref();
                break;
            }
        }
        // 4. The timer.
        if session.is_authorized() {
            *self.auth_deadline = None;
        }
        let activity = Duration::from_secs(self.state.config.activity_timeout);
        let pong_wait = Duration::from_secs(self.state.config.pong_timeout);
        loop {
            let due = next_deadline(
                *self.ping_sent,
                *self.last_activity,
                activity,
                pong_wait,
                [*self.auth_deadline, *self.write_deadline],
            );
            if due < self.timer.deadline() {
                self.timer.as_mut().reset(due);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            if self.write_deadline.is_some_and(|d| now >= d) {
                tracing::debug!(socket_id = %session.connection().socket_id_str, "write timed out");
                return Poll::Ready(End::Gone);
            }
            if self.auth_deadline.is_some_and(|d| now >= d) {
                return Poll::Ready(End::Close(
                    CloseCode::UNAUTHORIZED,
                    "Connection not authorized within timeout".to_owned(),
                ));
            }
            match *self.ping_sent {
                Some(sent) if now >= sent + pong_wait => {
                    return Poll::Ready(End::Close(CloseCode::PONG_NOT_RECEIVED, "Pong reply not received".to_owned()));
                }
                None if now >= *self.last_activity + activity => {
                    *self.ping_sent = Some(now);
                    session.connection().send(outbound::ping(), metrics);
                    *self.ws_ping_due = true;
                    cx.waker().wake_by_ref();
                }
                _ => {}
            }
            // Fired early (activity moved the deadline on) or handled: arm the next deadline.
            let next = next_deadline(
                *self.ping_sent,
                *self.last_activity,
                activity,
                pong_wait,
                [*self.auth_deadline, *self.write_deadline],
            );
            self.timer.as_mut().reset(next);
        }
    }
}

/// The earliest of the connection's deadlines: liveness (activity timeout, or the pong wait
/// once a ping went out) and the optional ones (authorization, blocked write).
fn next_deadline(
    ping_sent: Option<Instant>,
    last_activity: Instant,
    activity: Duration,
    pong_wait: Duration,
    others: [Option<Instant>; 2],
) -> Instant {
    let liveness = match ping_sent {
        Some(sent) => sent + pong_wait,
        None => last_activity + activity,
    };
    others.into_iter().flatten().fold(liveness, Instant::min)
}

/// What a write turn ended with.
enum Wrote {
    /// The outbox is empty and everything is flushed.
    Idle,
    /// The batch limit was reached with frames still queued (flushed so far).
    More,
    /// The outbox is drained and asks for the connection to close.
    Close(herald_core::outbox::CloseRequest),
}

/// Moves queued frames into tungstenite's write buffer (it writes to the socket when the buffer
/// fills) and flushes. `Pending` when the socket cannot take more; `Err` when it failed.
fn poll_write(
    ws: &mut Ws,
    conn: &Connection,
    unflushed: &mut bool,
    ws_ping_due: &mut bool,
    metrics: &Metrics,
    cx: &mut Context<'_>,
) -> Poll<Result<Wrote, ()>> {
    let (mut count, mut bytes) = (0u64, 0u64);
    let outcome = loop {
        if count as usize == BATCH {
            break Poll::Ready(Wrote::More);
        }
        match ws.poll_ready_unpin(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => return Poll::Ready(Err(())),
            Poll::Pending => break Poll::Pending,
        }
        let message = if std::mem::take(ws_ping_due) {
            Message::Ping(Bytes::new())
        } else {
            match conn.outbox.poll_pop(cx) {
                Poll::Ready(Popped::Frame(payload)) => {
                    count += 1;
                    bytes += payload.len() as u64;
                    // The payload was encoded once for every recipient; only the 2–10 byte
                    // header is produced here.
                    Message::Frame(Frame::message(payload, OpCode::Data(Data::Text), true))
                }
                Poll::Ready(Popped::Close(req)) => break Poll::Ready(Wrote::Close(req)),
                Poll::Pending => break Poll::Ready(Wrote::Idle),
            }
        };
        if Pin::new(&mut *ws).start_send(message).is_err() {
            return Poll::Ready(Err(()));
        }
        *unflushed = true;
    };
    if count > 0 {
        metrics.ws_messages_out.increment(count);
        metrics.ws_bytes_out.increment(bytes);
    }
    let outcome = ready!(outcome);
    if *unflushed {
        match ws.poll_flush_unpin(cx) {
            Poll::Ready(Ok(())) => *unflushed = false,
            Poll::Ready(Err(_)) => return Poll::Ready(Err(())),
            Poll::Pending => return Poll::Pending,
        }
    }
    Poll::Ready(Ok(outcome))
}

/// The peer closed: write the close reply tungstenite queued, within [`WRITE_TIMEOUT`].
async fn answer_close(mut ws: Ws) {
    let _ = timeout(WRITE_TIMEOUT, ws.flush()).await;
}

/// Admission refused: `pusher:error` with the close code, then the close frame (2.2).
pub(crate) async fn refuse(mut ws: Ws, code: CloseCode, message: &str) {
    close_with(&mut ws, code, message).await;
}

/// How long to wait for the peer's reply to our close frame.
const CLOSE_REPLY_WAIT: Duration = Duration::from_secs(2);

/// Writes `pusher:error` and the close frame, then lets the peer answer for at most
/// [`CLOSE_REPLY_WAIT`].
async fn close_with(ws: &mut Ws, code: CloseCode, message: &str) {
    let sent = timeout(WRITE_TIMEOUT, async {
        let err = outbound::closing_error(code, message);
        ws.feed(Message::Frame(Frame::message(err, OpCode::Data(Data::Text), true))).await?;
        let reason = Utf8Bytes::from(truncate_reason(message));
        ws.close(Some(CloseFrame { code: WsCloseCode::from(code.get()), reason })).await
    })
    .await;
    if matches!(sent, Ok(Ok(()))) {
        // Let the peer answer so the close handshake completes cleanly.
        let _ = timeout(CLOSE_REPLY_WAIT, async { while let Some(Ok(_)) = ws.next().await {} }).await;
    }
}

/// Close reasons are limited to 123 bytes by RFC 6455.
fn truncate_reason(message: &str) -> String {
    let mut end = message.len().min(123);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The connection future is allocated once per socket for the socket's whole life: it is
    /// most of herald's memory per idle connection (docs/BENCHMARKS.md). A field added without
    /// thought (an inline timer, a buffer) shows up here first.
    #[test]
    fn connection_task_stays_under_one_kib() {
        let size = std::mem::size_of::<ConnectionTask>();
        assert!(size <= 1024, "ConnectionTask is {size} bytes");
    }

    #[test]
    fn next_deadline_is_the_earliest_one() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(next_deadline(None, t0, s(120), s(30), [None, None]), t0 + s(120));
        assert_eq!(next_deadline(Some(t0 + s(1)), t0, s(120), s(30), [None, None]), t0 + s(31));
        assert_eq!(next_deadline(None, t0, s(120), s(30), [Some(t0 + s(5)), Some(t0 + s(10))]), t0 + s(5));
        assert_eq!(next_deadline(None, t0, s(120), s(30), [None, Some(t0 + s(10))]), t0 + s(10));
    }
}
