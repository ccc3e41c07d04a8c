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
//! Why a `Mutex<VecDeque>` and a stored `Waker` rather than a tokio mpsc channel or `Notify`:
//! an idle outbox owns no heap memory (an empty `VecDeque` does not allocate), which matters at
//! 100k+ idle sockets; there is exactly one consumer (the connection's task), so one waker slot
//! inside the same lock replaces `Notify`'s separate waiter list (one lock per push instead of
//! two); and the critical section is a handful of instructions, uncontended except during
//! fan-out.

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use herald_protocol::codes::CloseCode;
use parking_lot::Mutex;

/// Bounds of one outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimits {
    /// Frames queued at most (`outbound_queue_messages`).
    pub max_messages: usize,
    /// Bytes queued at most (`outbound_queue_kb`).
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
    pub code: CloseCode,
    /// Human reason; also sent as a `pusher:error` message just before the close frame.
    pub message: String,
}

/// Result of [`Outbox::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// The frame is queued for the writer.
    Queued,
    /// This push overflowed the bounds: the connection is now closing as a slow consumer.
    Overflowed,
    /// The connection is already closing; the frame was dropped.
    Closed,
}

/// What the writer takes out of the outbox next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Popped {
    /// The next frame to write.
    Frame(Bytes),
    /// Nothing is left to write and a close was requested: close the socket this way.
    Close(CloseRequest),
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Bytes>,
    bytes: usize,
    close: Option<CloseRequest>,
    /// The writer task, parked until a frame or a close request arrives.
    waker: Option<Waker>,
}

/// One connection's outbound queue; shared (`Arc<Connection>`) between every producer and the
/// single task that writes the socket.
#[derive(Debug)]
pub struct Outbox {
    /// parking_lot mutex: held only to push or pop frames, never across an `.await`, never while
    /// taking another lock (channel locks are taken *before* it, never after), and never while
    /// waking the writer (the waker is taken out and woken after the guard is dropped).
    state: Mutex<State>,
    limits: OutboxLimits,
}

impl Outbox {
    /// An empty outbox with the given bounds.
    pub fn new(limits: OutboxLimits) -> Self {
        Outbox { state: Mutex::new(State::default()), limits }
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
                code: CloseCode::OVER_CAPACITY,
                message: "Slow consumer: outbound queue is full".to_owned(),
            });
            let waker = st.waker.take();
            drop(st);
            wake(waker);
            return Pushed::Overflowed;
        }
        st.bytes += frame.len();
        st.queue.push_back(frame);
        let waker = st.waker.take();
        drop(st);
        wake(waker);
        Pushed::Queued
    }

    /// Asks the writer to close the connection after flushing what is queued. The first request
    /// wins; later ones are ignored.
    pub fn close(&self, code: CloseCode, message: impl Into<String>) {
        let mut st = self.state.lock();
        if st.close.is_none() {
            st.close = Some(CloseRequest { code, message: message.into() });
        }
        let waker = st.waker.take();
        drop(st);
        wake(waker);
    }

    /// True once a close was requested (or the queue overflowed).
    #[cfg(test)]
    pub(crate) fn is_closing(&self) -> bool {
        self.state.lock().close.is_some()
    }

    /// Takes the next frame, or the close request once the queue is empty, without waiting.
    pub fn pop(&self) -> Option<Popped> {
        Self::pop_locked(&mut self.state.lock())
    }

    /// Like [`Outbox::pop`], but when there is nothing to take, registers the writer's waker
    /// (woken by the next push or close request) and returns `Pending`.
    pub fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Popped> {
        let mut st = self.state.lock();
        if let Some(popped) = Self::pop_locked(&mut st) {
            return Poll::Ready(popped);
        }
        match &mut st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    fn pop_locked(st: &mut State) -> Option<Popped> {
        if let Some(frame) = st.queue.pop_front() {
            st.bytes -= frame.len();
            if st.queue.is_empty() && st.queue.capacity() > 64 {
                // Give back the memory a burst made the queue grow to.
                st.queue = VecDeque::new();
            }
            return Some(Popped::Frame(frame));
        }
        st.close.clone().map(Popped::Close)
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    use super::*;

    fn outbox(max_messages: usize, max_bytes: usize) -> Outbox {
        Outbox::new(OutboxLimits { max_messages, max_bytes })
    }

    fn pop_all(ob: &Outbox) -> (Vec<String>, Option<CloseRequest>) {
        let mut frames = Vec::new();
        while let Some(popped) = ob.pop() {
            match popped {
                Popped::Frame(b) => frames.push(String::from_utf8(b.to_vec()).unwrap()),
                Popped::Close(req) => return (frames, Some(req)),
            }
        }
        (frames, None)
    }

    /// Counts how often the writer was woken.
    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn frames_pop_in_push_order() {
        let ob = outbox(10, 1000);
        for i in 0..5 {
            assert_eq!(ob.push(Bytes::from(format!("{i}"))), Pushed::Queued);
        }
        assert_eq!(pop_all(&ob), (vec!["0".into(), "1".into(), "2".into(), "3".into(), "4".into()], None));
    }

    #[test]
    fn message_bound_overflow_closes_with_4100_and_frees_queue() {
        let ob = outbox(2, 1000);
        ob.push(Bytes::from_static(b"a"));
        ob.push(Bytes::from_static(b"b"));
        assert_eq!(ob.push(Bytes::from_static(b"c")), Pushed::Overflowed);
        assert_eq!(ob.push(Bytes::from_static(b"d")), Pushed::Closed);
        let (frames, close) = pop_all(&ob);
        assert!(frames.is_empty());
        assert_eq!(close.expect("close requested").code, CloseCode::OVER_CAPACITY);
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
        ob.close(CloseCode::UNAUTHORIZED, "bye");
        ob.close(CloseCode::RECONNECT, "ignored");
        let (frames, close) = pop_all(&ob);
        assert_eq!(frames, ["x"]);
        assert_eq!(close, Some(CloseRequest { code: CloseCode::UNAUTHORIZED, message: "bye".into() }));
    }

    #[test]
    fn parked_writer_is_woken_once_by_the_first_push_and_by_close() {
        let ob = outbox(10, 100);
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(ob.poll_pop(&mut cx).is_pending());
        ob.push(Bytes::from_static(b"1"));
        ob.push(Bytes::from_static(b"2"));
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "only the push that found the writer parked wakes it");
        assert_eq!(ob.poll_pop(&mut cx), Poll::Ready(Popped::Frame(Bytes::from_static(b"1"))));
        assert_eq!(ob.poll_pop(&mut cx), Poll::Ready(Popped::Frame(Bytes::from_static(b"2"))));
        assert!(ob.poll_pop(&mut cx).is_pending());
        ob.close(CloseCode::RECONNECT, "bye");
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
        assert!(matches!(ob.poll_pop(&mut cx), Poll::Ready(Popped::Close(_))));
    }
}
