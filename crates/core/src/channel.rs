//! One channel's subscribers and, for presence channels, its members.
//!
//! Membership model (PROTOCOL.md 5.5): members are keyed by user id; several connections of
//! one user are one member, added when the first of them subscribes and removed when the last
//! one leaves. All membership changes and the messages they cause are decided under the
//! channel's write lock, so two connections of the same user racing cannot both produce a
//! `member_added`, and `subscription_succeeded` is queued before any later event.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use herald_protocol::channel::ChannelKind;
use parking_lot::RwLock;

use crate::connection::Connection;
use crate::metrics::Metrics;

/// A subscribed connection and, on presence channels, the user it joined as.
#[derive(Debug)]
pub struct Subscriber {
    pub conn: Arc<Connection>,
    pub user_id: Option<Arc<str>>,
}

/// A presence member: its `user_info` (compact JSON, from the connection that created the
/// member) and how many subscribed connections carry its user id.
#[derive(Debug)]
pub struct Member {
    pub info: Option<Arc<str>>,
    pub connections: u32,
}

#[derive(Debug, Default)]
pub struct ChannelState {
    /// Keyed by the connection's per-node sequence number (unique on this node).
    pub subscribers: HashMap<u64, Subscriber>,
    /// Presence members by user id; empty on other channel kinds.
    pub members: HashMap<Arc<str>, Member>,
}

impl ChannelState {
    /// Queues `frame` to every subscriber except `exclude` (a per-node sequence number).
    /// Returns how many connections it was queued for.
    pub fn broadcast(&self, frame: &Bytes, exclude: Option<u64>, metrics: &Metrics) -> usize {
        let mut n = 0;
        for (seq, sub) in &self.subscribers {
            if Some(*seq) != exclude {
                sub.conn.send(frame.clone(), metrics);
                n += 1;
            }
        }
        n
    }
}

/// A channel of one app on this node. Exists while it has at least one local subscriber.
#[derive(Debug)]
pub struct Channel {
    pub name: Arc<str>,
    pub kind: ChannelKind,
    /// parking_lot RwLock: publishes take the read lock to fan out, (un)subscribes take the
    /// write lock. Never held across an `.await`. Lock order: the namespace's map shard first
    /// (only when creating or removing the channel), then this lock, then outbox mutexes.
    pub state: RwLock<ChannelState>,
}

impl Channel {
    pub fn new(name: Arc<str>, kind: ChannelKind) -> Self {
        Channel { name, kind, state: RwLock::new(ChannelState::default()) }
    }

    pub fn subscription_count(&self) -> usize {
        self.state.read().subscribers.len()
    }

    pub fn user_count(&self) -> usize {
        self.state.read().members.len()
    }
}
