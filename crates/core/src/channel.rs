//! One channel's subscribers and, for presence channels, its members.
//!
//! Membership model (PROTOCOL.md 5.5): members are keyed by user id; several connections of
//! one user are one member, added when the first of them subscribes and removed when the last
//! one leaves. All membership changes and the messages they cause are decided under the
//! channel's write lock, so two connections of the same user racing cannot both produce a
//! `member_added`, and `subscription_succeeded` is queued before any later event.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use herald_protocol::channel::ChannelKind;
use parking_lot::RwLock;

use crate::connection::Connection;
use crate::events::{ChannelEvent, EventKind, Events};
use crate::metrics::Metrics;

/// A subscribed connection and, on presence channels, the user it joined as.
#[derive(Debug)]
pub struct Subscriber {
    /// The subscribed connection; fan-out queues frames on its outbox.
    pub conn: Arc<Connection>,
    /// The presence member it counts towards; `None` on other channel kinds.
    pub user_id: Option<Arc<str>>,
}

/// A presence member: its `user_info` (compact JSON, from the connection that created the
/// member) and how many subscribed connections carry its user id.
#[derive(Debug)]
pub struct Member {
    /// The member's `user_info`, sent to others in `member_added` and the member list.
    pub info: Option<Arc<str>>,
    /// Local subscribed connections carrying this user id.
    pub connections: u32,
    /// Other nodes that have this user on the channel (cluster mode; empty on a single node).
    pub nodes: Vec<u32>,
}

impl Member {
    /// A member exists while any node (this one or another) has a connection of the user.
    pub fn present(&self) -> bool {
        self.connections > 0 || !self.nodes.is_empty()
    }
}

/// The last event published through the HTTP API on a cache channel (PROTOCOL.md 9.1).
///
/// The one shape of a cached event, end to end: a channel's state holds it, a publish hands it
/// to the cluster adapter in [`crate::adapter::Forward`], and a cluster snapshot or another
/// node's publish delivers it back. Its encodings for other nodes (the pub/sub header and the
/// Redis value) live in one place, the binary's `cluster/wire.rs`; they carry the remaining
/// lifetime, since an [`Instant`] means nothing on another machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedEvent {
    /// The event name.
    pub event: Arc<str>,
    /// The event `data`, as published.
    pub data: Arc<str>,
    /// When it stops being served to new subscribers (`cache_ttl` after it was published).
    pub expires: Instant,
}

impl CachedEvent {
    /// `event` with `data`, cached for `ttl` from now.
    pub fn new(event: &str, data: &str, ttl: Duration) -> Self {
        CachedEvent { event: Arc::from(event), data: Arc::from(data), expires: Instant::now() + ttl }
    }

    /// How long it stays cached after `now` (zero once expired).
    pub fn remaining(&self, now: Instant) -> Duration {
        self.expires.saturating_duration_since(now)
    }
}

/// Throttle state of `pusher_internal:subscription_count` (PROTOCOL.md 9.2).
#[derive(Debug, Default)]
pub struct CountThrottle {
    last_sent: Option<Instant>,
    /// A delayed send is scheduled; further changes only update what it will send.
    timer_armed: bool,
}

/// How subscription counts are announced on a channel.
#[derive(Debug, Clone, Copy)]
pub struct CountPolicy {
    /// The app has `enable_subscription_count`.
    pub enabled: bool,
    /// Above this many subscribers, updates are coalesced...
    pub threshold: usize,
    /// ...to at most one per this interval.
    pub interval: Duration,
}

/// Everything about a channel that changes, behind its [`Channel::state`] lock.
#[derive(Debug, Default)]
pub struct ChannelState {
    /// Keyed by the connection's per-node sequence number (unique on this node).
    pub subscribers: HashMap<u64, Subscriber>,
    /// Presence members by user id; empty on other channel kinds.
    pub members: HashMap<Arc<str>, Member>,
    /// Cache channels only. Kept while the channel is empty, until it expires, which is why
    /// an empty channel with a live cache stays in its namespace.
    pub cache: Option<CachedEvent>,
    /// When the last `subscription_count` went out and whether a coalesced one is pending.
    pub count: CountThrottle,
    /// Cluster mode: subscription counts of the other nodes, by node id.
    pub remote_counts: HashMap<u32, u64>,
    /// Cluster mode: this node listens to the channel's cluster traffic (set by the adapter's
    /// snapshot, cleared when it drops interest). Keeps the channel alive while set.
    pub remote_interest: bool,
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

    /// The cached event, if present and not expired.
    pub fn live_cache(&self, now: Instant) -> Option<&CachedEvent> {
        self.cache.as_ref().filter(|c| c.expires > now)
    }

    /// Whether the channel can be dropped from its namespace: nobody subscribed, nothing cached,
    /// no cluster interest.
    pub fn is_removable(&self, now: Instant) -> bool {
        self.subscribers.is_empty() && self.live_cache(now).is_none() && !self.remote_interest
    }

    /// Subscriptions across the cluster: local plus what other nodes reported.
    pub fn total_subscriptions(&self) -> u64 {
        self.subscribers.len() as u64 + self.remote_counts.values().sum::<u64>()
    }
}

/// A channel of one app on this node. Exists while it has a local subscriber, a live cached
/// event or cluster interest ([`ChannelState::is_removable`]).
#[derive(Debug)]
pub struct Channel {
    /// The channel name.
    pub name: Arc<str>,
    /// Its kind, from the name's prefix.
    pub kind: ChannelKind,
    /// parking_lot RwLock: publishes take the read lock to fan out, (un)subscribes take the
    /// write lock. Never held across an `.await`. Lock order: the namespace's map shard first
    /// (only when creating or removing the channel), then this lock, then outbox mutexes.
    pub state: RwLock<ChannelState>,
}

impl Channel {
    /// A channel with no subscribers, members or cache yet.
    pub fn new(name: Arc<str>, kind: ChannelKind) -> Self {
        Channel { name, kind, state: RwLock::new(ChannelState::default()) }
    }

    /// Subscribed connections on this node.
    pub fn subscription_count(&self) -> usize {
        self.state.read().subscribers.len()
    }

    /// Presence members known here, including those only other nodes have (0 on other kinds).
    pub fn user_count(&self) -> usize {
        self.state.read().members.len()
    }
}

impl Channel {
    /// Announces the current subscription count after the subscriber set changed, under the
    /// channel's write lock (`st`). Immediate up to the threshold; above it at most once per
    /// interval, the last value winning (a timer task sends the coalesced update).
    pub fn count_changed(
        self: &Arc<Self>,
        st: &mut ChannelState,
        policy: CountPolicy,
        events: &Events,
        metrics: &Metrics,
    ) {
        self.count_changed_at(st, policy, events, metrics, Instant::now());
    }

    /// [`Channel::count_changed`] with the current time passed in (tests drive the throttle
    /// with their own instants instead of sleeping).
    pub(crate) fn count_changed_at(
        self: &Arc<Self>,
        st: &mut ChannelState,
        policy: CountPolicy,
        events: &Events,
        metrics: &Metrics,
        now: Instant,
    ) {
        if !policy.enabled || self.kind.is_presence() || self.kind.is_internal() {
            return;
        }
        if st.subscribers.is_empty() {
            return;
        }
        let due = st.count.last_sent.is_none_or(|t| now.duration_since(t) >= policy.interval);
        if st.total_subscriptions() <= policy.threshold as u64 || due {
            st.count.last_sent = Some(now);
            announce_count(self, st, events, metrics);
            return;
        }
        if st.count.timer_armed {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        st.count.timer_armed = true;
        let at = st.count.last_sent.map_or(now, |t| t + policy.interval);
        let channel = self.clone();
        let metrics = metrics.clone();
        let events = events.clone();
        rt.spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let mut st = channel.state.write();
            st.count.timer_armed = false;
            st.count.last_sent = Some(Instant::now());
            if !st.subscribers.is_empty() {
                announce_count(&channel, &st, &events, &metrics);
            }
        });
    }
}

/// Sends the current count to every subscriber and reports it as a webhook event.
fn announce_count(channel: &Channel, st: &ChannelState, events: &Events, metrics: &Metrics) {
    let count = st.total_subscriptions();
    st.broadcast(&herald_protocol::outbound::subscription_count(&channel.name, count), None, metrics);
    let event = || ChannelEvent::SubscriptionCount { channel: channel.name.clone(), count };
    events.emit_with(EventKind::SubscriptionCount, channel.kind, event);
}
