//! The shared handle of one live WebSocket connection.
//!
//! A [`Connection`] is what other parts of herald hold to reach a socket: channels keep one per
//! subscriber, the namespace keeps one per live connection (counts, terminate). It carries only
//! what those holders need — the socket id and the outbox — so it stays small. Everything that
//! only the connection's own task touches lives in [`crate::session::Session`] instead.

use bytes::Bytes;
use herald_protocol::socket_id::SocketId;

use crate::metrics::Metrics;
use crate::outbox::{Outbox, OutboxLimits, Pushed};

/// One live connection as others reach it: its socket id and its outbox. (Its signed-in user
/// lives in its session; terminate and server-to-user delivery find connections through
/// [`crate::users::Users`].)
#[derive(Debug)]
pub struct Connection {
    /// The id this node gave it (`{node}.{seq}`); `seq` keys it in channels and its namespace.
    pub socket_id: SocketId,
    /// `socket_id` formatted once ("{node}.{seq}"), as clients and SDKs see it.
    pub socket_id_str: Box<str>,
    /// Its bounded send queue, drained by the connection's task.
    pub outbox: Outbox,
}

impl Connection {
    /// A connection with an empty outbox of the given bounds.
    pub fn new(socket_id: SocketId, limits: OutboxLimits) -> Self {
        Connection { socket_id_str: socket_id.to_string().into_boxed_str(), socket_id, outbox: Outbox::new(limits) }
    }

    /// Queues a frame for this connection, counting a slow-consumer disconnect if it overflowed.
    pub fn send(&self, frame: Bytes, metrics: &Metrics) {
        if self.outbox.push(frame) == Pushed::Overflowed {
            metrics.slow_consumer_disconnects.increment(1);
        }
    }
}
