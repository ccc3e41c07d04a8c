//! The bounded outbound queue of one connection.
//!
//! Every frame a connection will receive — its own replies and every broadcast — goes through
//! its [`Outbox`], so frames reach the socket in exactly the order herald produced them
//! (PROTOCOL.md 3.2). Broadcasts push the *same* `Bytes` into many outboxes: the payload is
//! encoded once and shared by reference.
//!
//! The queue is bounded twice, in messages and in bytes. A push that would exceed either bound
//! marks the connection as a slow consumer: its queued frames are dropped (to free the memory
//! at once) and the connection is closed with 4100 ("over capacity", pusher-js reconnects after
//! a second). Memory per connection is therefore bounded no matter how fast publishers are.
//!
//! Why a `Mutex<VecDeque>` + `Notify` rather than a tokio mpsc channel: an idle outbox owns no
//! heap memory (an empty `VecDeque` does not allocate), which matters at 100k+ idle sockets,
//! and the critical section is a handful of instructions, uncontended except during fan-out.

use std::collections::VecDeque;

use bytes::Bytes;
use herald_protocol::codes::close;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Bounds of one outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimits {
    pub max_messages: usize,
    pub max_bytes: usize,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        OutboxLimits { max_messages: 1000, max_bytes: 1024 * 1024 }
    }
}

/// Why and how the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRequest {
    /// WebSocket close code (PROTOCOL.md 12.1).
    pub code: u16,
    /// Human reason; also sent as a `pusher:error` message just before the close frame.
    pub message: String,
}

/// Result of [`Outbox::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// This push overflowed the bounds: the connection is now closing as a slow consumer.
    Overflowed,
    /// The connection is already closing; the frame was dropped.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Bytes>,
    bytes: usize,
    close: Option<CloseRequest>,
}

/// One connection's outbound queue; shared (`Arc<Connection>`) between every producer and the
/// single task that writes the socket.
#[derive(Debug)]
pub struct Outbox {
    /// parking_lot mutex: held only to push or pop frames, never across an `.await` and never
    /// while taking another lock (channel locks are taken *before* it, never after).
    state: Mutex<State>,
    /// Wakes the writer task when the queue goes from empty to non-empty or a close is requested.
    notify: Notify,
    limits: OutboxLimits,
}

impl Outbox {
    pub fn new(limits: OutboxLimits) -> Self {
        Outbox { state: Mutex::new(State::default()), notify: Notify::new(), limits }
    }

    /// Queues one frame. Never blocks.
    pub fn push(&self, frame: Bytes) -> Pushed {
        let mut st = self.state.lock();
        if st.close.is_some() {
            return Pushed::Closed;
        }
        if st.queue.len() >= self.limits.max_messages || st.bytes + frame.len() > self.limits.max_bytes {
            st.queue = VecDeque::new();
            st.bytes = 0;
            st.close = Some(CloseRequest {
                code: close::OVER_CAPACITY,
                message: "Slow consumer: outbound queue is full".to_owned(),
            });
            drop(st);
            self.notify.notify_one();
            return Pushed::Overflowed;
        }
        let was_empty = st.queue.is_empty();
        st.bytes += frame.len();
        st.queue.push_back(frame);
        drop(st);
        if was_empty {
            self.notify.notify_one();
        }
        Pushed::Queued
    }

    /// Asks the writer to close the connection after flushing what is queued. The first request
    /// wins; later ones are ignored.
    pub fn close(&self, code: u16, message: impl Into<String>) {
        let mut st = self.state.lock();
        if st.close.is_none() {
            st.close = Some(CloseRequest { code, message: message.into() });
        }
        drop(st);
        self.notify.notify_one();
    }

    /// True once a close was requested (or the queue overflowed).
    pub fn is_closing(&self) -> bool {
        self.state.lock().close.is_some()
    }

    /// Moves up to `max` queued frames into `out`. When the queue is empty and a close was
    /// requested, returns that request (the writer then closes the socket).
    pub fn drain(&self, out: &mut Vec<Bytes>, max: usize) -> Option<CloseRequest> {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let n = st.queue.len().min(max);
        for frame in st.queue.drain(..n) {
            st.bytes -= frame.len();
            out.push(frame);
        }
        if st.queue.is_empty() {
            if st.queue.capacity() > 64 {
                // Give back the memory a burst made the queue grow to.
                st.queue = VecDeque::new();
            }
            return st.close.clone();
        }
        None
    }

    /// True if frames are waiting.
    pub fn has_pending(&self) -> bool {
        !self.state.lock().queue.is_empty()
    }

    /// Resolves when something was pushed or a close was requested since the last drain.
    pub async fn ready(&self) {
        self.notify.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(max_messages: usize, max_bytes: usize) -> Outbox {
        Outbox::new(OutboxLimits { max_messages, max_bytes })
    }

    #[test]
    fn frames_drain_in_push_order() {
        let ob = outbox(10, 1000);
        for i in 0..5 {
            assert_eq!(ob.push(Bytes::from(format!("{i}"))), Pushed::Queued);
        }
        let mut out = Vec::new();
        assert_eq!(ob.drain(&mut out, 3), None);
        assert_eq!(ob.drain(&mut out, 10), None);
        let got: Vec<_> = out.iter().map(|b| String::from_utf8(b.to_vec()).unwrap()).collect();
        assert_eq!(got, ["0", "1", "2", "3", "4"]);
    }

    #[test]
    fn message_bound_overflow_closes_with_4100_and_frees_queue() {
        let ob = outbox(2, 1000);
        ob.push(Bytes::from_static(b"a"));
        ob.push(Bytes::from_static(b"b"));
        assert_eq!(ob.push(Bytes::from_static(b"c")), Pushed::Overflowed);
        assert_eq!(ob.push(Bytes::from_static(b"d")), Pushed::Closed);
        let mut out = Vec::new();
        let close = ob.drain(&mut out, 10).expect("close requested");
        assert!(out.is_empty());
        assert_eq!(close.code, 4100);
    }

    #[test]
    fn byte_bound_overflow_closes() {
        let ob = outbox(100, 10);
        assert_eq!(ob.push(Bytes::from_static(b"123456")), Pushed::Queued);
        assert_eq!(ob.push(Bytes::from_static(b"123456")), Pushed::Overflowed);
    }

    #[test]
    fn close_is_delivered_after_queued_frames() {
        let ob = outbox(10, 100);
        ob.push(Bytes::from_static(b"x"));
        ob.close(4009, "bye");
        ob.close(4200, "ignored");
        let mut out = Vec::new();
        let close = ob.drain(&mut out, 10).expect("close after drain");
        assert_eq!(out.len(), 1);
        assert_eq!(close, CloseRequest { code: 4009, message: "bye".into() });
    }
}
