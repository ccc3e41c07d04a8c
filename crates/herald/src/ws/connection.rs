//! The task that owns one WebSocket.
//!
//! One task per connection, no split halves: a `select!` over (a) the outbox becoming ready,
//! (b) the next inbound frame, (c) the liveness deadline, (d) the authorization deadline.
//! All branches are cancel-safe (`WebSocketStream::next` and `Notify::notified` are), and
//! writes happen inside a branch body, so a frame is never half-sent.
//!
//! Liveness (PROTOCOL.md 2.7): any inbound frame is activity. After `activity_timeout` of
//! silence the server sends a WS Ping and a `pusher:ping`; if nothing arrives within
//! `pong_timeout` the connection is closed with 4201.
//!
//! Slow consumers: the outbox is bounded (see `herald_core::outbox`); a socket write that
//! cannot make progress for `WRITE_TIMEOUT` drops the connection.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use herald_core::session::Session;
use herald_protocol::codes::close;
use herald_protocol::outbound;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame, Utf8Bytes};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::server::AppState;

type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// How long one batch of writes may take before the peer is considered gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames written per wake-up before flushing (bounds latency of the first frame in a burst).
const BATCH: usize = 64;

/// Why the loop ended.
enum End {
    /// The peer closed or the socket failed: nothing more to send.
    Gone,
    /// herald closes with this code, after a `pusher:error` carrying the same code.
    Close(u16, String),
}

/// Runs an admitted connection until it ends, then drops the session (which cleans up).
pub(crate) async fn run(mut ws: Ws, session: Session, state: Arc<AppState>) {
    let mut session = session;
    let conn = session.connection().clone();
    let metrics = state.hub.metrics.clone();
    let activity = Duration::from_secs(state.config.activity_timeout);
    let pong_wait = Duration::from_secs(state.config.pong_timeout);
    let auth_deadline = session
        .app()
        .limits
        .require_authorized_connections
        .then(|| Instant::now() + Duration::from_secs(state.config.authorized_connection_timeout));

    let mut last_activity = Instant::now();
    let mut ping_sent: Option<Instant> = None;
    let mut batch: Vec<Bytes> = Vec::new();
    // Two timers for the connection's whole life, reset in place (creating a new timer on every
    // loop turn showed up in profiles).
    let liveness = tokio::time::sleep_until(last_activity + activity);
    tokio::pin!(liveness);
    let authorization = tokio::time::sleep_until(auth_deadline.unwrap_or_else(Instant::now));
    tokio::pin!(authorization);

    let end = loop {
        let liveness_deadline = match ping_sent {
            Some(sent) => sent + pong_wait,
            None => last_activity + activity,
        };
        if liveness.deadline() != liveness_deadline {
            liveness.as_mut().reset(liveness_deadline);
        }
        tokio::select! {
            biased;
            () = conn.outbox.ready() => {
                match write_pending(&mut ws, &conn.outbox, &mut batch, &metrics).await {
                    Ok(None) => {}
                    Ok(Some(req)) => break End::Close(req.code, req.message),
                    Err(()) => break End::Gone,
                }
            }
            msg = ws.next() => {
                let Some(msg) = msg else { break End::Gone };
                last_activity = Instant::now();
                ping_sent = None;
                match msg {
                    Ok(Message::Text(text)) => {
                        metrics.ws_messages_in.increment(1);
                        metrics.ws_bytes_in.increment(text.len() as u64);
                        if let Some(pending) = session.handle_text(&text) {
                            // Cluster mode: wait until the channel's cluster traffic reaches
                            // this node (bounded by the adapter) before joining.
                            let ready = state.hub.adapter().prepare(&session.app().id, pending.channel());
                            if let Some(ready) = ready {
                                ready.await;
                            }
                            session.finish(pending);
                        }
                    }
                    Ok(Message::Binary(_)) => {} // not part of the protocol: ignored (2.1)
                    Ok(Message::Ping(_)) => {
                        // tungstenite queued the Pong; push it out now.
                        if ws.flush().await.is_err() { break End::Gone }
                    }
                    Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => {}
                    Ok(Message::Close(_)) => break End::Gone,
                    Err(WsError::Capacity(_)) => break End::Close(close::MESSAGE_TOO_BIG, "Message too big".to_owned()),
                    Err(e) => {
                        tracing::debug!(socket_id = %conn.socket_id_str, error = %e, "websocket read error");
                        break End::Gone;
                    }
                }
            }
            () = &mut liveness => {
                if ping_sent.is_some() {
                    break End::Close(close::PONG_NOT_RECEIVED, "Pong reply not received".to_owned());
                }
                ping_sent = Some(Instant::now());
                conn.send(outbound::ping(), &metrics);
                if ws.send(Message::Ping(Bytes::new())).await.is_err() { break End::Gone }
            }
            () = &mut authorization, if auth_deadline.is_some() && !session.is_authorized() => {
                break End::Close(close::UNAUTHORIZED, "Connection not authorized within timeout".to_owned());
            }
        }
    };

    // Clean up first (presence removals must not wait on a slow close handshake).
    drop(session);
    if let End::Close(code, message) = end {
        metrics.closed_by_server(code);
        if code == close::OVER_CAPACITY {
            tracing::info!(socket_id = %conn.socket_id_str, "slow consumer disconnected");
        }
        close_with(&mut ws, code, &message).await;
    }
}

/// Writes everything queued (in batches), then flushes. Returns a close request once the queue
/// is drained and a close was asked for.
async fn write_pending(
    ws: &mut Ws,
    outbox: &herald_core::outbox::Outbox,
    batch: &mut Vec<Bytes>,
    metrics: &herald_core::metrics::Metrics,
) -> Result<Option<herald_core::outbox::CloseRequest>, ()> {
    let work = async {
        loop {
            let close = outbox.drain(batch, BATCH);
            let mut bytes = 0u64;
            let count = batch.len() as u64;
            for payload in batch.drain(..) {
                bytes += payload.len() as u64;
                // The payload was encoded once for every recipient; only the 2–10 byte header
                // is produced here.
                let frame = Frame::message(payload, OpCode::Data(Data::Text), true);
                ws.feed(Message::Frame(frame)).await.map_err(|_| ())?;
            }
            metrics.ws_messages_out.increment(count);
            metrics.ws_bytes_out.increment(bytes);
            if close.is_some() {
                ws.flush().await.map_err(|_| ())?;
                return Ok(close);
            }
            if !outbox.has_pending() {
                ws.flush().await.map_err(|_| ())?;
                return Ok(None);
            }
        }
    };
    match timeout(WRITE_TIMEOUT, work).await {
        Ok(r) => r,
        Err(_) => Err(()),
    }
}

/// Admission refused: `pusher:error` with the close code, then the close frame (2.2).
pub(crate) async fn refuse(mut ws: Ws, code: u16, message: &str) {
    close_with(&mut ws, code, message).await;
}

/// How long to wait for the peer's reply to our close frame.
const CLOSE_REPLY_WAIT: Duration = Duration::from_secs(2);

async fn close_with(ws: &mut Ws, code: u16, message: &str) {
    let sent = timeout(WRITE_TIMEOUT, async {
        let err = outbound::error(Some(code), message);
        ws.feed(Message::Frame(Frame::message(err, OpCode::Data(Data::Text), true))).await?;
        let reason = Utf8Bytes::from(truncate_reason(message));
        ws.close(Some(CloseFrame { code: CloseCode::from(code), reason })).await
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
