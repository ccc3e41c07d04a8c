//! Signed-in users of one app: who is online, which connections each user has, and who
//! watches whom (PROTOCOL.md 8.4–8.5).
//!
//! A user is online while at least one connection is signed in as them. Watchers are
//! connections that signed in with a `watchlist`; they receive
//! `pusher_internal:watchlist_events` when a watched user comes online (first connection) or
//! goes offline (last connection closed).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use herald_protocol::outbound;
use parking_lot::Mutex;

use crate::connection::Connection;
use crate::metrics::Metrics;

#[derive(Debug, Default)]
struct Index {
    /// Connections signed in as each user (present ⇔ online).
    by_user: HashMap<Arc<str>, HashMap<u64, Arc<Connection>>>,
    /// For each watched user id, the connections watching it.
    watchers: HashMap<Arc<str>, HashMap<u64, Arc<Connection>>>,
    /// What each watching connection watches (to unregister it).
    watching: HashMap<u64, Vec<Arc<str>>>,
    /// Cluster mode: users online on any node, as the cluster's verdicts report them (the
    /// local `by_user` then only says who is online *here*). `None` on a single node.
    cluster_online: Option<std::collections::HashSet<Arc<str>>>,
}

/// Sign-in bookkeeping of one app.
#[derive(Debug, Default)]
pub struct Users {
    /// One mutex per app: sign-in and disconnect of signed-in connections are rare next to
    /// publishes, and only events sent to a user (`#server-to-user-`) take it. It is what orders
    /// a sign-in's `signin_success` against such events (see [`Users::sign_in`]). Held only for
    /// map updates and queueing frames (outbox pushes never block); never across an `.await`,
    /// never while holding a channel lock.
    index: Mutex<Index>,
}

impl Users {
    /// Records that `conn` signed in as `user_id`, watching `watchlist` (already truncated),
    /// and queues `replies` to it (`pusher:signin_success`, then any warning) in the same step:
    /// an event sent to the user ([`Users::deliver`]) is queued either before the reply (and
    /// not to this connection) or after it, so nothing sent after the client saw
    /// `signin_success` can miss it (PROTOCOL.md 8.3).
    /// When `watch_events` is on, also queues the watchlist's initial state to `conn` and an
    /// `online` event to the watchers of `user_id` if this is its first connection.
    /// Returns true when this is the user's first connection on this node.
    pub fn sign_in(
        &self,
        conn: &Arc<Connection>,
        user_id: &Arc<str>,
        replies: impl IntoIterator<Item = Bytes>,
        watchlist: &[String],
        watch_events: bool,
        metrics: &Metrics,
    ) -> bool {
        let seq = conn.socket_id.seq;
        let mut ix = self.index.lock();
        for frame in replies {
            conn.send(frame, metrics);
        }
        unwatch(&mut ix, seq);
        let conns = ix.by_user.entry(user_id.clone()).or_default();
        let first = conns.is_empty();
        let already = conns.insert(seq, conn.clone()).is_some();
        let came_online = first && !already;
        // In a cluster the online verdict is the cluster's (see `cluster_status`).
        if watch_events && came_online && ix.cluster_online.is_none() {
            notify(&ix, user_id, true, metrics);
        }
        if !watch_events || watchlist.is_empty() {
            return came_online;
        }
        let mut online = Vec::new();
        let mut offline = Vec::new();
        let mut ids = Vec::with_capacity(watchlist.len());
        for id in watchlist {
            let id: Arc<str> = Arc::from(id.as_str());
            let online_somewhere = ix.cluster_online.as_ref().is_some_and(|s| s.contains(&id));
            if ix.by_user.contains_key(&id) || online_somewhere {
                online.push(id.clone());
            } else {
                offline.push(id.clone());
            }
            ix.watchers.entry(id.clone()).or_default().insert(seq, conn.clone());
            ids.push(id);
        }
        ix.watching.insert(seq, ids);
        let on: Vec<&str> = online.iter().map(|s| &**s).collect();
        let off: Vec<&str> = offline.iter().map(|s| &**s).collect();
        conn.send(outbound::watchlist_events(&on, &off), metrics);
        came_online
    }

    /// Forgets a closed connection that was signed in as `user_id`; the user goes offline (and
    /// watchers are told) when it was their last connection.
    /// Returns true when that was the user's last connection on this node.
    pub fn sign_out(&self, seq: u64, user_id: &Arc<str>, watch_events: bool, metrics: &Metrics) -> bool {
        let mut ix = self.index.lock();
        unwatch(&mut ix, seq);
        let gone = match ix.by_user.get_mut(user_id) {
            Some(conns) => conns.remove(&seq).is_some() && conns.is_empty(),
            None => false,
        };
        if gone {
            ix.by_user.remove(user_id);
            if watch_events && ix.cluster_online.is_none() {
                notify(&ix, user_id, false, metrics);
            }
        }
        gone
    }

    /// Cluster mode: a user came online on its first node / went offline on its last one.
    /// Tells this node's watchers of that user.
    pub fn cluster_status(&self, user_id: &str, online: bool, watch_events: bool, metrics: &Metrics) {
        let mut ix = self.index.lock();
        let set = ix.cluster_online.get_or_insert_with(Default::default);
        let changed = if online { set.insert(Arc::from(user_id)) } else { set.remove(user_id) };
        if changed && watch_events {
            notify(&ix, user_id, online, metrics);
        }
    }

    /// Cluster mode: replaces the set of users online anywhere (snapshot after (re)connecting).
    pub fn set_cluster_online(&self, users: impl IntoIterator<Item = Arc<str>>) {
        self.index.lock().cluster_online = Some(users.into_iter().collect());
    }

    /// Whether `user_id` has a signed-in connection on this node.
    pub fn is_local(&self, user_id: &str) -> bool {
        self.index.lock().by_user.contains_key(user_id)
    }

    /// Users signed in on this node (to re-register them with the cluster).
    pub fn local_users(&self) -> Vec<Arc<str>> {
        self.index.lock().by_user.keys().cloned().collect()
    }

    /// Queues `frame` (an event on `#server-to-user-{user_id}`) to every connection signed in
    /// as `user_id` except `exclude` (a local sequence number), whether or not it has
    /// subscribed to that channel yet (PROTOCOL.md 8.3). Returns how many it reached.
    pub fn deliver(&self, user_id: &str, frame: &Bytes, exclude: Option<u64>, metrics: &Metrics) -> usize {
        let ix = self.index.lock();
        let Some(conns) = ix.by_user.get(user_id) else { return 0 };
        let mut reached = 0;
        for (seq, conn) in conns {
            if Some(*seq) != exclude {
                conn.send(frame.clone(), metrics);
                reached += 1;
            }
        }
        reached
    }

    /// Every connection signed in as `user_id`.
    pub fn connections_of(&self, user_id: &str) -> Vec<Arc<Connection>> {
        self.index.lock().by_user.get(user_id).map(|c| c.values().cloned().collect()).unwrap_or_default()
    }
}

fn unwatch(ix: &mut Index, seq: u64) {
    if let Some(ids) = ix.watching.remove(&seq) {
        for id in ids {
            if let Some(w) = ix.watchers.get_mut(&id) {
                w.remove(&seq);
                if w.is_empty() {
                    ix.watchers.remove(&id);
                }
            }
        }
    }
}

fn notify(ix: &Index, user_id: &str, online: bool, metrics: &Metrics) {
    let Some(watchers) = ix.watchers.get(user_id) else { return };
    let frame =
        if online { outbound::watchlist_events(&[user_id], &[]) } else { outbound::watchlist_events(&[], &[user_id]) };
    for conn in watchers.values() {
        conn.send(frame.clone(), metrics);
    }
}
