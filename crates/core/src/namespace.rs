//! All live state of one app on this node: its channels and its connections.
//!
//! Apps never share a namespace, so nothing published or queried through one app can reach
//! another app's sockets. Subscribing and queries live here; publishing in [`crate::publish`],
//! changes reported by other nodes in [`crate::remote`]. There is no global lock: channels sit in a sharded map, and each
//! channel has its own lock (see [`crate::channel`] for the lock order).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use dashmap::DashMap;
use herald_protocol::channel::ChannelKind;
use herald_protocol::outbound;
use metrics::Gauge;

use crate::adapter::{Adapter, LocalChange};
use crate::channel::{CachedEvent, Channel, ChannelState, CountPolicy, Member, Subscriber};
use crate::connection::Connection;
use crate::events::{ChannelEvent, EventKind, Events};
use crate::metrics::Metrics;
use crate::users::Users;

/// The per-app rules a subscription applies.
#[derive(Debug, Clone, Copy)]
pub struct SubscribePolicy {
    /// Distinct users a presence channel holds (`max_presence_members_per_channel`).
    pub max_members: usize,
    /// How the channel's subscription count is announced.
    pub count: CountPolicy,
    /// Occupied channels the app may have on this node (`max_channels`); `None`: no cap.
    pub max_channels: Option<u64>,
}

/// A presence member as supplied by a subscribing connection.
#[derive(Debug, Clone)]
pub struct JoinAs {
    /// The member's user id.
    pub user_id: Arc<str>,
    /// Its `user_info` as compact JSON, if given.
    pub user_info: Option<Arc<str>>,
}

/// What a successful subscribe changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// The connection was already subscribed; `subscription_succeeded` was sent again.
    Again,
    /// The connection is now subscribed.
    New {
        /// The channel went from 0 to 1 subscribers (occupied).
        occupied: bool,
        /// Presence: this user was not yet a member (member_added was broadcast).
        new_member: bool,
    },
}

/// What an unsubscribe changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    /// The channel has no subscriber left (vacated).
    pub vacated: bool,
    /// Presence: the user's last connection left (member_removed was broadcast).
    pub member_removed: Option<Arc<str>>,
}

/// Why the namespace refused a subscription (after the session's own checks passed).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubscribeError {
    /// The presence channel already has its maximum of distinct users.
    #[error("Presence channel {channel} is full (limit {limit} members)")]
    PresenceFull {
        /// The presence channel.
        channel: String,
        /// Its member limit.
        limit: usize,
    },
    /// Joining would occupy one channel more than the app's `max_channels`.
    #[error("Channel limit reached: the app may have at most {limit} channels in use; not subscribed to {channel}")]
    ChannelLimit {
        /// The channel that would have been occupied.
        channel: String,
        /// The app's limit.
        limit: u64,
    },
}

/// Counts reported for one channel by the HTTP API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelCounts {
    /// Subscribed connections.
    pub subscription_count: usize,
    /// Distinct presence users (0 on other channel kinds).
    pub user_count: usize,
}

/// One app's channels, connections and signed-in users on this node.
#[derive(Default)]
pub struct Namespace {
    /// Channels with at least one local subscriber. A channel is inserted and removed only while
    /// holding its shard's write lock, and subscribers are added under that same shard lock, so
    /// a subscriber can never be added to a channel that was just removed.
    pub(crate) channels: DashMap<Arc<str>, Arc<Channel>>,
    /// Live connections by per-node sequence number (counts, terminate_connections).
    connections: DashMap<u64, Arc<Connection>>,
    /// Exact number of admitted connections; checked and bumped atomically for quotas.
    connection_count: AtomicUsize,
    /// `herald_app_connections{app_id}` (see [`Namespace::with_connections_gauge`]); moved with
    /// `connection_count`. `None` (tests, or a namespace built without metrics): not exported.
    connections_gauge: Option<Gauge>,
    /// Channels with at least one local subscriber (`max_channels`): raised, under the
    /// channel's write lock, by the subscribe that occupies a channel (checked and bumped in one
    /// atomic step), lowered by the unsubscribe that vacates it.
    occupied_count: AtomicU64,
    /// Local subscriptions (connection, channel) of the app: what the memory trim watches with
    /// the connection and channel counts.
    subscription_count: AtomicU64,
    /// Messages delivered to this app's connections on this node since the usage flusher last
    /// took them (`take_delivered`): bumped once per fan-out by its number of recipients
    /// (channel events, client events, `member_added` / `member_removed`), never per recipient.
    /// Relaxed: only the sum matters, read by one flusher.
    delivered: AtomicU64,
    /// Set by the usage accounting while today's message count is at or over the app's
    /// `max_messages_per_day`: client events are then refused (HTTP publishes check the same
    /// flag through [`Namespace::over_message_quota`]).
    over_quota: AtomicBool,
    /// Signed-in users and watchlists.
    pub users: Users,
    /// Where channel lifecycle events (webhooks) go, tagged with this app's id.
    pub events: Events,
    /// This app's id (what the adapter tags cluster traffic with).
    pub(crate) app_id: Arc<str>,
    /// This node's id, the first half of the socket ids it issues (to recognise its own
    /// connections in an excluded socket id).
    pub(crate) node: u32,
    /// The rest of the cluster; `None` on a single node.
    pub(crate) adapter: Option<Arc<dyn Adapter>>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace").field("app_id", &self.app_id).field("channels", &self.channels.len()).finish()
    }
}

impl Namespace {
    /// The namespace of app `app_id` on node `node` (the hub's id).
    pub fn new(app_id: &str, node: u32, events: Events, adapter: Arc<dyn Adapter>) -> Self {
        let adapter = adapter.is_clustered().then_some(adapter);
        Namespace { events, app_id: Arc::from(app_id), node, adapter, ..Namespace::default() }
    }

    /// Exports this app's connection count as `gauge` (the hub passes
    /// `herald_app_connections{app_id}`, registered once here rather than per connection).
    pub fn with_connections_gauge(mut self, gauge: Gauge) -> Self {
        self.connections_gauge = Some(gauge);
        self
    }

    /// Reports a local change to the cluster (no-op on a single node).
    fn tell(&self, change: impl FnOnce() -> LocalChange) {
        if let Some(adapter) = &self.adapter {
            adapter.local_change(&self.app_id, change());
        }
    }

    /// Registers a connection unless `limit` connections already exist. Returns false when over.
    pub fn add_connection(&self, conn: &Arc<Connection>, limit: Option<u64>) -> bool {
        let prev = self.connection_count.fetch_add(1, Ordering::AcqRel);
        if limit.is_some_and(|l| prev as u64 >= l) {
            self.connection_count.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        self.connections.insert(conn.socket_id.seq, conn.clone());
        if let Some(g) = &self.connections_gauge {
            g.increment(1.0);
        }
        true
    }

    /// Forgets the connection with per-node sequence number `seq` (it closed).
    pub fn remove_connection(&self, seq: u64) {
        if self.connections.remove(&seq).is_some() {
            self.connection_count.fetch_sub(1, Ordering::AcqRel);
            if let Some(g) = &self.connections_gauge {
                g.decrement(1.0);
            }
        }
    }

    /// Counts `n` messages delivered to this app's connections (one call per fan-out).
    pub(crate) fn count_delivered(&self, n: usize) {
        if n > 0 {
            self.delivered.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// The messages delivered since the last call, resetting the count (the usage flusher).
    pub fn take_delivered(&self) -> u64 {
        self.delivered.swap(0, Ordering::Relaxed)
    }

    /// The messages delivered since the flusher last took them (not resetting the count).
    pub fn pending_delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Whether the app is over its daily message quota (set by the usage accounting).
    pub fn over_message_quota(&self) -> bool {
        self.over_quota.load(Ordering::Relaxed)
    }

    /// Marks the app as over (or back under) its daily message quota.
    pub fn set_over_message_quota(&self, over: bool) {
        self.over_quota.store(over, Ordering::Relaxed);
    }

    /// Connections of this app on this node.
    pub fn connection_count(&self) -> usize {
        self.connection_count.load(Ordering::Acquire)
    }

    /// Every live connection signed in as `user_id`.
    pub fn connections_of_user(&self, user_id: &str) -> Vec<Arc<Connection>> {
        self.users.connections_of(user_id)
    }

    /// Subscribes `conn` and queues the resulting frames, in this order: `subscription_succeeded`
    /// (with the member list on presence channels) to `conn`; `member_added` to the others; the
    /// cached event or `pusher:cache_miss` to `conn` (cache channels); the new subscription count
    /// to everyone (when enabled). All under the channel's write lock, so no event of the channel
    /// can slip in between.
    pub fn subscribe(
        &self,
        conn: &Arc<Connection>,
        name: &str,
        kind: ChannelKind,
        join_as: Option<JoinAs>,
        policy: SubscribePolicy,
        metrics: &Metrics,
    ) -> Result<Joined, SubscribeError> {
        let max_members = policy.max_members;
        let seq = conn.socket_id.seq;
        // Holding the entry keeps the shard write-locked until the subscriber is in place.
        let entry =
            self.channels.entry(Arc::from(name)).or_insert_with(|| Arc::new(Channel::new(Arc::from(name), kind)));
        let channel = entry.value().clone();
        let mut st = channel.state.write();

        if st.subscribers.contains_key(&seq) {
            conn.send(succeeded_frame(&channel, &st), metrics);
            return Ok(Joined::Again);
        }
        if let Some(member) = &join_as {
            if !st.members.contains_key(&member.user_id) && st.members.len() >= max_members {
                let empty = st.subscribers.is_empty();
                drop(st);
                drop(entry);
                if empty {
                    self.remove_if_empty(name);
                }
                return Err(SubscribeError::PresenceFull { channel: name.to_owned(), limit: max_members });
            }
        }

        let occupied = st.subscribers.is_empty();
        if occupied && !self.occupy(policy.max_channels) {
            drop(st);
            drop(entry);
            self.remove_if_empty(name);
            let limit = policy.max_channels.unwrap_or(u64::MAX);
            return Err(SubscribeError::ChannelLimit { channel: name.to_owned(), limit });
        }
        let mut new_member = false;
        let mut first_here = false;
        if let Some(member) = &join_as {
            let m = st.members.entry(member.user_id.clone()).or_insert_with(|| Member {
                info: member.user_info.clone(),
                connections: 0,
                nodes: Vec::new(),
            });
            m.connections += 1;
            first_here = m.connections == 1;
            new_member = first_here && m.nodes.is_empty();
        }
        st.subscribers
            .insert(seq, Subscriber { conn: conn.clone(), user_id: join_as.as_ref().map(|m| m.user_id.clone()) });
        drop(entry);

        conn.send(succeeded_frame(&channel, &st), metrics);
        if new_member {
            if let Some(member) = &join_as {
                let frame = outbound::member_added(name, &member.user_id, member.user_info.as_deref());
                self.count_delivered(st.broadcast(&frame, Some(seq), metrics));
            }
        }
        if occupied {
            self.events
                .emit_with(EventKind::Occupied, kind, || ChannelEvent::Occupied { channel: channel.name.clone() });
        }
        if new_member {
            if let Some(member) = &join_as {
                let (channel, user_id) = (channel.name.clone(), member.user_id.clone());
                self.events.emit_with(EventKind::MemberAdded, kind, || ChannelEvent::MemberAdded { channel, user_id });
            }
        }
        if kind.is_cache() {
            let frame = match st.live_cache(Instant::now()) {
                Some(c) => outbound::channel_event(&c.event, name, &c.data, None),
                None => {
                    let miss = || ChannelEvent::CacheMiss { channel: channel.name.clone() };
                    self.events.emit_with(EventKind::CacheMiss, kind, miss);
                    outbound::cache_miss(name)
                }
            };
            conn.send(frame, metrics);
        }
        // The count first, so the cluster reports channel_occupied before member_added.
        self.tell(|| LocalChange::Count { channel: channel.name.clone(), local: st.subscribers.len() as u64 });
        if first_here {
            if let Some(member) = &join_as {
                self.tell(|| LocalChange::MemberJoined {
                    channel: channel.name.clone(),
                    user_id: member.user_id.clone(),
                    user_info: member.user_info.clone(),
                });
            }
        }
        channel.count_changed(&mut st, policy.count, &self.events, metrics);
        metrics.subscriptions.increment(1.0);
        self.subscription_count.fetch_add(1, Ordering::Relaxed);
        if occupied {
            metrics.channels.increment(1.0);
        }
        Ok(Joined::New { occupied, new_member })
    }

    /// Removes `conn` from `name`. `None` if it was not subscribed.
    pub fn unsubscribe(&self, conn: &Connection, name: &str, count: CountPolicy, metrics: &Metrics) -> Option<Left> {
        let channel = self.channels.get(name).map(|c| c.value().clone())?;
        let mut st = channel.state.write();
        let sub = st.subscribers.remove(&conn.socket_id.seq)?;
        let mut member_removed = None;
        if let Some(uid) = sub.user_id {
            let (last_here, gone) = match st.members.get_mut(&uid) {
                Some(m) => {
                    m.connections = m.connections.saturating_sub(1);
                    (m.connections == 0, !m.present())
                }
                None => (false, false),
            };
            if last_here {
                self.tell(|| LocalChange::MemberLeft { channel: channel.name.clone(), user_id: uid.clone() });
            }
            if gone {
                st.members.remove(&uid);
                self.count_delivered(st.broadcast(&outbound::member_removed(name, &uid), None, metrics));
                let (kind, channel, user_id) = (channel.kind, channel.name.clone(), uid.clone());
                self.events
                    .emit_with(EventKind::MemberRemoved, kind, || ChannelEvent::MemberRemoved { channel, user_id });
                member_removed = Some(uid);
            }
        }
        let vacated = st.subscribers.is_empty();
        if vacated {
            let vacated = || ChannelEvent::Vacated { channel: channel.name.clone() };
            self.events.emit_with(EventKind::Vacated, channel.kind, vacated);
        }
        self.tell(|| LocalChange::Count { channel: channel.name.clone(), local: st.subscribers.len() as u64 });
        if vacated {
            self.tell(|| LocalChange::Vacated { channel: channel.name.clone() });
        }
        channel.count_changed(&mut st, count, &self.events, metrics);
        drop(st);
        metrics.subscriptions.decrement(1.0);
        self.subscription_count.fetch_sub(1, Ordering::Relaxed);
        if vacated {
            self.occupied_count.fetch_sub(1, Ordering::AcqRel);
            metrics.channels.decrement(1.0);
            self.remove_if_empty(name);
        }
        Some(Left { vacated, member_removed })
    }

    /// Counts one more occupied channel unless that would exceed `max`; false when full.
    fn occupy(&self, max: Option<u64>) -> bool {
        let max = max.unwrap_or(u64::MAX);
        self.occupied_count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).is_ok()
    }

    /// What this app holds on the node, in units the memory trim compares: connections +
    /// subscriptions + channel entries (occupied or holding a cached event).
    pub fn footprint(&self) -> u64 {
        self.connection_count() as u64 + self.subscription_count.load(Ordering::Relaxed) + self.channels.len() as u64
    }

    /// Channels with a local subscriber (what `max_channels` caps).
    pub fn occupied_channels(&self) -> u64 {
        self.occupied_count.load(Ordering::Acquire)
    }

    /// Drops the channel from the map if it is (still) empty. Takes the shard write lock, then
    /// the channel's read lock: the same order as `subscribe`.
    fn remove_if_empty(&self, name: &str) {
        let now = Instant::now();
        self.channels.remove_if(name, |_, ch| ch.state.read().is_removable(now));
    }

    /// Drops channels that are empty and whose cache expired (run periodically).
    pub fn sweep(&self) {
        let now = Instant::now();
        self.channels.retain(|_, ch| !ch.state.read().is_removable(now));
    }

    /// The live cached event of a cache channel and its remaining TTL in whole seconds.
    pub fn cached(&self, name: &str) -> Option<(CachedEvent, u64)> {
        let ch = self.channels.get(name).map(|c| c.value().clone())?;
        let st = ch.state.read();
        let now = Instant::now();
        st.live_cache(now).map(|c| (c.clone(), c.remaining(now).as_secs()))
    }

    /// Counts of one channel (zeros when nobody is subscribed here).
    pub fn counts(&self, name: &str) -> ChannelCounts {
        match self.channels.get(name).map(|c| c.value().clone()) {
            Some(ch) => {
                let st = ch.state.read();
                ChannelCounts { subscription_count: st.subscribers.len(), user_count: st.members.len() }
            }
            None => ChannelCounts::default(),
        }
    }

    /// Occupied channels whose name starts with `prefix`, with their counts, sorted by name.
    /// `#server-to-user-` channels are internal and never listed (PROTOCOL.md 10.5).
    pub fn occupied(&self, prefix: &str) -> Vec<(Arc<str>, ChannelCounts)> {
        let mut out: Vec<_> = self
            .channels
            .iter()
            .filter(|c| c.key().starts_with(prefix) && !c.value().kind.is_internal())
            .map(|c| (c.key().clone(), c.value().clone()))
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|(name, ch)| {
                let st = ch.state.read();
                (!st.subscribers.is_empty()).then(|| {
                    (name, ChannelCounts { subscription_count: st.subscribers.len(), user_count: st.members.len() })
                })
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Member user ids of a presence channel, sorted.
    pub fn user_ids(&self, name: &str) -> Vec<Arc<str>> {
        let Some(ch) = self.channels.get(name).map(|c| c.value().clone()) else {
            return Vec::new();
        };
        let mut ids: Vec<_> = ch.state.read().members.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Whether `name` is still in the channel map (tests check that channels are dropped).
    #[cfg(test)]
    pub(crate) fn has_channel(&self, name: &str) -> bool {
        self.channels.contains_key(name)
    }
}

fn succeeded_frame(channel: &Channel, st: &ChannelState) -> Bytes {
    if channel.kind.is_presence() {
        let mut members: Vec<(&str, Option<&str>)> =
            st.members.iter().map(|(id, m)| (&**id, m.info.as_deref())).collect();
        members.sort_by(|a, b| a.0.cmp(b.0));
        outbound::presence_subscription_succeeded(&channel.name, members.into_iter())
    } else {
        outbound::subscription_succeeded(&channel.name)
    }
}

impl Namespace {
    /// The user id connection `seq` joined presence channel `name` as.
    pub fn member_of(&self, name: &str, seq: u64) -> Option<Arc<str>> {
        let ch = self.channels.get(name).map(|c| c.value().clone())?;
        let st = ch.state.read();
        st.subscribers.get(&seq).and_then(|s| s.user_id.clone())
    }
}

impl Namespace {
    /// Every live connection of this app.
    pub fn connections(&self) -> Vec<Arc<Connection>> {
        self.connections.iter().map(|c| c.value().clone()).collect()
    }

    /// Asks every connection of this app to close (shutdown).
    pub fn close_all(&self, code: herald_protocol::codes::CloseCode, message: &str) {
        for conn in self.connections.iter() {
            conn.outbox.close(code, message);
        }
    }
}
