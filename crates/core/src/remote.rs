//! Applying what other nodes report to this node's channels (cluster mode).
//!
//! The Redis adapter turns cluster traffic into [`RemoteUpdate`]s. Presence members and
//! subscription counts of other nodes are kept per channel next to the local state, so the
//! local subscribers' view (member list, `member_added` / `member_removed`, subscription count)
//! is the cluster's. Updates are idempotent (a node joining twice is one node), so a snapshot
//! followed by events that overlap it converges to the right state.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use herald_protocol::channel::SERVER_TO_USER_PREFIX;
use herald_protocol::outbound;
use herald_protocol::socket_id::SocketId;

use crate::channel::{CachedEvent, Channel, ChannelState, CountPolicy, Member};
use crate::events::Events;
use crate::metrics::Metrics;
use crate::namespace::Namespace;

/// A presence member held on this node: (channel, user_id, user_info).
pub type LocalMember = (Arc<str>, Arc<str>, Option<Arc<str>>);

/// A change on another node, or a snapshot of the cluster's state of one channel.
#[derive(Debug, Clone)]
pub enum RemoteUpdate {
    /// Loaded when this node starts listening to the channel (`replace: false`: merged), and
    /// again after a Redis outage (`replace: true`: other nodes' members and counts not in the
    /// snapshot are dropped, with `member_removed` where a member disappears).
    Snapshot {
        /// Other nodes' presence members: (node, user_id, user_info).
        members: Vec<(u32, Arc<str>, Option<Arc<str>>)>,
        /// Other nodes' subscription counts: (node, count).
        counts: Vec<(u32, u64)>,
        /// The channel's cached event in the shared state; kept unless ours expires later.
        cache: Option<CachedEvent>,
        /// Whether other nodes' state missing from the snapshot is dropped (after an outage).
        replace: bool,
    },
    /// The first connection of a user on another node joined the presence channel.
    MemberJoined {
        /// The node it joined on.
        node: u32,
        /// The member's user id.
        user_id: Arc<str>,
        /// Its `user_info` as compact JSON, if given.
        user_info: Option<Arc<str>>,
    },
    /// The last connection of a user on another node left the presence channel.
    MemberLeft {
        /// The node it left from.
        node: u32,
        /// The member's user id.
        user_id: Arc<str>,
    },
    /// Another node's subscription count of the channel changed.
    Count {
        /// The node reporting it.
        node: u32,
        /// Its local subscriptions now (0: it has none left).
        count: u64,
    },
    /// An event published on another node: deliver `frame` to local subscribers except
    /// `exclude` (and keep `cache`), through the same fan-out as a local publish.
    Event {
        /// The complete JSON frame, as the publishing node encoded it.
        frame: Bytes,
        /// The connection that must not receive it (only acted on if it is one of ours).
        exclude: Option<SocketId>,
        /// Cache channels: the event to keep as the channel's cache.
        cache: Option<CachedEvent>,
    },
}

impl Namespace {
    /// Applies one update. Returns false when the channel has no local state to apply it to
    /// (a message this node did not need — counted by the caller).
    pub fn apply_remote(&self, name: &str, update: RemoteUpdate, count: CountPolicy, metrics: &Metrics) -> bool {
        if let RemoteUpdate::Event { frame, exclude, cache } = update {
            return self.deliver(name, &frame, exclude, cache, metrics).needed;
        }
        if let RemoteUpdate::Snapshot { .. } = update {
            let kind = herald_protocol::channel::ChannelKind::of(name);
            let entry =
                self.channels.entry(Arc::from(name)).or_insert_with(|| Arc::new(Channel::new(Arc::from(name), kind)));
            let channel = entry.value().clone();
            let mut st = channel.state.write();
            drop(entry);
            st.remote_interest = true;
            self.count_delivered(apply(&channel, &mut st, update, count, &self.events, metrics));
            return true;
        }
        let Some(channel) = self.channels.get(name).map(|c| c.value().clone()) else { return false };
        let mut st = channel.state.write();
        let needed = !st.subscribers.is_empty() || st.remote_interest;
        self.count_delivered(apply(&channel, &mut st, update, count, &self.events, metrics));
        needed
    }

    /// A node left or died: forget its members and counts everywhere.
    pub fn node_gone(&self, node: u32, count: CountPolicy, metrics: &Metrics) {
        let channels: Vec<Arc<Channel>> = self.channels.iter().map(|c| c.value().clone()).collect();
        for channel in channels {
            let mut st = channel.state.write();
            let users: Vec<Arc<str>> =
                st.members.iter().filter(|(_, m)| m.nodes.contains(&node)).map(|(u, _)| u.clone()).collect();
            for user_id in users {
                self.count_delivered(member_left(&channel, &mut st, node, user_id, metrics));
            }
            if st.remote_counts.remove(&node).is_some() {
                channel.count_changed(&mut st, count, &self.events, metrics);
            }
        }
    }

    /// This node stopped listening to the channel: drop the remote state.
    pub fn drop_interest(&self, name: &str) {
        if let Some(channel) = self.channels.get(name).map(|c| c.value().clone()) {
            let mut st = channel.state.write();
            st.remote_interest = false;
            st.remote_counts.clear();
            st.members.retain(|_, m| {
                m.nodes.clear();
                m.connections > 0
            });
        }
        let now = Instant::now();
        self.channels.remove_if(name, |_, ch| ch.state.read().is_removable(now));
    }

    /// Whether a local connection carries `user_id` on presence channel `name`.
    pub fn has_local_member(&self, name: &str, user_id: &str) -> bool {
        self.channels.get(name).is_some_and(|c| c.state.read().members.get(user_id).is_some_and(|m| m.connections > 0))
    }

    /// Local subscriptions of `name`.
    pub fn local_count(&self, name: &str) -> u64 {
        self.channels.get(name).map_or(0, |c| c.state.read().subscribers.len() as u64)
    }

    /// Whether this node currently has local subscribers on `name` (for `#server-to-user-{id}`:
    /// a connection signed in as `id`, its recipients; PROTOCOL.md 8.3).
    pub fn has_local_subscribers(&self, name: &str) -> bool {
        if let Some(user_id) = name.strip_prefix(SERVER_TO_USER_PREFIX) {
            return self.users.is_local(user_id);
        }
        self.channels.get(name).is_some_and(|c| !c.state.read().subscribers.is_empty())
    }

    /// Channels with local subscribers, and the `#server-to-user-` channel of every user signed
    /// in here (what this node must listen to in the cluster).
    pub fn locally_subscribed(&self) -> Vec<Arc<str>> {
        let mut names: Vec<Arc<str>> = self
            .channels
            .iter()
            .filter(|c| !c.key().starts_with(SERVER_TO_USER_PREFIX))
            .filter(|c| !c.value().state.read().subscribers.is_empty())
            .map(|c| c.key().clone())
            .collect();
        let users = self.users.local_users();
        names.extend(users.iter().map(|u| Arc::from(format!("{SERVER_TO_USER_PREFIX}{u}"))));
        names
    }

    /// Presence members this node holds locally, per channel (to re-register after a Redis
    /// outage): (channel, user_id, user_info).
    pub fn local_members(&self) -> Vec<LocalMember> {
        let mut out = Vec::new();
        for c in self.channels.iter() {
            let st = c.value().state.read();
            for (uid, m) in &st.members {
                if m.connections > 0 {
                    out.push((c.key().clone(), uid.clone(), m.info.clone()));
                }
            }
        }
        out
    }

    /// Local subscription counts per channel (to re-register after a Redis outage).
    pub fn local_counts(&self) -> Vec<(Arc<str>, u64)> {
        self.channels
            .iter()
            .filter_map(|c| {
                let n = c.value().state.read().subscribers.len() as u64;
                (n > 0).then(|| (c.key().clone(), n))
            })
            .collect()
    }
}

/// Applies a non-event update; returns the `member_added` / `member_removed` frames it queued
/// (what counts as delivered messages).
fn apply(
    channel: &Arc<Channel>,
    st: &mut ChannelState,
    update: RemoteUpdate,
    count: CountPolicy,
    events: &Events,
    metrics: &Metrics,
) -> usize {
    let mut delivered = 0;
    match update {
        RemoteUpdate::Snapshot { members, counts, cache, replace } => {
            let mut changed = !counts.is_empty();
            if replace {
                let confirmed: std::collections::HashSet<(u32, &str)> =
                    members.iter().map(|(n, u, _)| (*n, &**u)).collect();
                let stale: Vec<(u32, Arc<str>)> = st
                    .members
                    .iter()
                    .flat_map(|(u, m)| m.nodes.iter().map(move |n| (*n, u.clone())))
                    .filter(|(n, u)| !confirmed.contains(&(*n, &**u)))
                    .collect();
                for (node, user_id) in stale {
                    delivered += member_left(channel, st, node, user_id, metrics);
                }
                // Counts of nodes the snapshot no longer names are gone: that is a change too.
                changed |= !st.remote_counts.is_empty();
                st.remote_counts.clear();
            }
            for (node, user_id, user_info) in members {
                delivered += member_joined(channel, st, node, user_id, user_info, metrics);
            }
            for (node, n) in counts {
                st.remote_counts.insert(node, n);
            }
            if let Some(c) = cache {
                if st.cache.as_ref().is_none_or(|old| old.expires < c.expires) {
                    st.cache = Some(c);
                }
            }
            if changed && !st.subscribers.is_empty() {
                channel.count_changed(st, count, events, metrics);
            }
        }
        RemoteUpdate::MemberJoined { node, user_id, user_info } => {
            delivered += member_joined(channel, st, node, user_id, user_info, metrics)
        }
        RemoteUpdate::MemberLeft { node, user_id } => delivered += member_left(channel, st, node, user_id, metrics),
        RemoteUpdate::Count { node, count: n } => {
            if n == 0 {
                st.remote_counts.remove(&node);
            } else {
                st.remote_counts.insert(node, n);
            }
            channel.count_changed(st, count, events, metrics);
        }
        // Events never get here: `apply_remote` hands them to the publish fan-out.
        RemoteUpdate::Event { .. } => {}
    }
    delivered
}

fn member_joined(
    channel: &Channel,
    st: &mut ChannelState,
    node: u32,
    user_id: Arc<str>,
    user_info: Option<Arc<str>>,
    metrics: &Metrics,
) -> usize {
    let m = st.members.entry(user_id.clone()).or_insert_with(|| Member {
        info: user_info.clone(),
        connections: 0,
        nodes: Vec::new(),
    });
    let was_present = m.present();
    if !m.nodes.contains(&node) {
        m.nodes.push(node);
    }
    if was_present {
        return 0;
    }
    let frame = outbound::member_added(&channel.name, &user_id, user_info.as_deref());
    st.broadcast(&frame, None, metrics)
}

/// Returns the `member_removed` frames queued.
fn member_left(channel: &Channel, st: &mut ChannelState, node: u32, user_id: Arc<str>, metrics: &Metrics) -> usize {
    let Some(m) = st.members.get_mut(&user_id) else { return 0 };
    m.nodes.retain(|n| *n != node);
    if m.present() {
        return 0;
    }
    st.members.remove(&user_id);
    st.broadcast(&outbound::member_removed(&channel.name, &user_id), None, metrics)
}
