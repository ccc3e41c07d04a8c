//! Publishing an event: the one path from the HTTP API or a client event to every subscriber
//! in the cluster.
//!
//! [`Namespace::publish`] takes a [`Publication`] and, for each of its channels:
//! 1. encodes the frame once (the same `Bytes` go to every local socket and to the other nodes);
//! 2. fans it out to this node's subscribers (`Namespace::deliver`), keeping it as the
//!    channel's cached event on a cache channel in the same step, under the channel's lock;
//! 3. forwards the frame (and the cached event) to the other nodes when clustered.
//!
//! and then counts it once. An event published on another node arrives as
//! [`RemoteUpdate::Event`](crate::remote::RemoteUpdate::Event) and takes the same local fan-out.
//!
//! Every published event passes through [`Namespace::publish`] exactly once, on the node where
//! it was published (a console tap belongs there); every delivery to local connections passes
//! through `Namespace::deliver` exactly once, on the node that delivers, which is where
//! delivered messages are counted for the app's usage ([`Namespace::take_delivered`]).
//!
//! The excluded connection (the HTTP API's `socket_id`, the sender of a client event) travels
//! as a [`SocketId`], to other nodes too, and is resolved to a local sequence number in one
//! function, by the node that delivers.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use herald_protocol::channel::{ChannelKind, SERVER_TO_USER_PREFIX};
use herald_protocol::outbound;
use herald_protocol::socket_id::SocketId;

use crate::adapter::Forward;
use crate::channel::{CachedEvent, Channel};
use crate::metrics::Metrics;
use crate::namespace::Namespace;

/// Where a published event comes from: decides whether it is cached and what it counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `POST /events` or `/batch_events` (PROTOCOL.md 10.3, 10.4). On a cache channel the event
    /// becomes the channel's cached event for `cache_ttl` (9.1). Counted in
    /// `herald_api_events_published_total`.
    Api {
        /// How long the event stays cached on a cache channel.
        cache_ttl: Duration,
    },
    /// A client event (PROTOCOL.md 7), never cached. Counted in `herald_client_events_total`.
    Client,
}

/// One event to publish, on one or more channels of an app.
#[derive(Debug, Clone, Copy)]
pub struct Publication<'a> {
    /// The event name (validated by the caller).
    pub event: &'a str,
    /// The payload, exactly as the frame's `data` string carries it.
    pub data: &'a str,
    /// The frame's `user_id`: client events on presence channels only (PROTOCOL.md 7.2).
    pub user_id: Option<&'a str>,
    /// The connection that must not receive it, on whichever node it is.
    pub exclude: Option<SocketId>,
    /// Decides caching and counting.
    pub origin: Origin,
}

/// What one local fan-out did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fanout {
    /// Local connections the frame was queued to.
    pub recipients: usize,
    /// The channel has local subscribers or this node listens to its cluster traffic (an
    /// event from another node for a channel without either was not needed here).
    pub needed: bool,
}

impl Namespace {
    /// Publishes `p` on every channel in `channels` (already validated): local fan-out, cache,
    /// cluster forward, then one count. Returns the number of local connections reached.
    pub fn publish<'c>(
        &self,
        channels: impl IntoIterator<Item = &'c str>,
        p: &Publication<'_>,
        metrics: &Metrics,
    ) -> usize {
        let mut recipients = 0;
        for channel in channels {
            let frame = outbound::channel_event(p.event, channel, p.data, p.user_id);
            let cache = match p.origin {
                Origin::Api { cache_ttl } if ChannelKind::of(channel).is_cache() => {
                    Some(CachedEvent::new(p.event, p.data, cache_ttl))
                }
                _ => None,
            };
            let forward_cache = if self.adapter.is_some() { cache.clone() } else { None };
            recipients += self.deliver(channel, &frame, p.exclude, cache, metrics).recipients;
            if let Some(adapter) = &self.adapter {
                let msg = Forward { channel: Arc::from(channel), frame, exclude: p.exclude, cache: forward_cache };
                adapter.forward(&self.app_id, msg);
            }
        }
        match p.origin {
            Origin::Api { .. } => metrics.api_events_published.increment(1),
            Origin::Client => metrics.client_events.increment(1),
        }
        recipients
    }

    /// The local fan-out of a published event, the same for events published here and on
    /// another node: on a cache channel `cache` replaces the cached event (even with no
    /// subscriber, so the channel is created if absent); then `frame` is queued to every local
    /// subscriber except `exclude`. Without a cache the channel's read lock suffices, so
    /// publishes on one channel fan out in parallel.
    ///
    /// `#server-to-user-{id}` is the exception: its recipients are the connections signed in
    /// as `id`, subscribed to it yet or not (PROTOCOL.md 8.3), so an event sent right after
    /// `signin_success` does not race the client's subscribe frame.
    ///
    /// Every delivery of an event to this node's connections passes here exactly once (events
    /// from other nodes too), so this is where delivered messages are counted for the app's
    /// usage: once per fan-out, by its number of recipients.
    pub(crate) fn deliver(
        &self,
        name: &str,
        frame: &Bytes,
        exclude: Option<SocketId>,
        cache: Option<CachedEvent>,
        metrics: &Metrics,
    ) -> Fanout {
        let fanout = self.fan_out(name, frame, exclude, cache, metrics);
        self.count_delivered(fanout.recipients);
        fanout
    }

    fn fan_out(
        &self,
        name: &str,
        frame: &Bytes,
        exclude: Option<SocketId>,
        cache: Option<CachedEvent>,
        metrics: &Metrics,
    ) -> Fanout {
        let exclude = self.local_seq(exclude);
        if let Some(user_id) = name.strip_prefix(SERVER_TO_USER_PREFIX) {
            let recipients = self.users.deliver(user_id, frame, exclude, metrics);
            return Fanout { recipients, needed: recipients > 0 || self.users.is_local(user_id) };
        }
        let Some(cache) = cache else {
            let Some(channel) = self.channels.get(name).map(|c| c.value().clone()) else {
                return Fanout::default();
            };
            let st = channel.state.read();
            let needed = !st.subscribers.is_empty() || st.remote_interest;
            return Fanout { recipients: st.broadcast(frame, exclude, metrics), needed };
        };
        // The shard stays locked until the channel's own lock is held, so a concurrent
        // `remove_if_empty` cannot drop the channel (and the cache with it) in between; a
        // concurrent subscriber sees either the old cache and then this event, or this event
        // as its cache — never both, never neither.
        let entry = self
            .channels
            .entry(Arc::from(name))
            .or_insert_with(|| Arc::new(Channel::new(Arc::from(name), ChannelKind::of(name))));
        let channel = entry.value().clone();
        let mut st = channel.state.write();
        drop(entry);
        st.cache = Some(cache);
        let needed = !st.subscribers.is_empty() || st.remote_interest;
        Fanout { recipients: st.broadcast(frame, exclude, metrics), needed }
    }

    /// The per-node sequence number of `socket_id` if this node issued it: the one place an
    /// excluded socket id becomes something the fan-out compares.
    fn local_seq(&self, socket_id: Option<SocketId>) -> Option<u64> {
        socket_id.filter(|s| s.node == self.node).map(|s| s.seq)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use parking_lot::Mutex;

    use super::*;
    use crate::adapter::{Adapter, Answer, BoxFuture, LocalAdapter, LocalChange, Query, QueryError};
    use crate::channel::CountPolicy;
    use crate::connection::Connection;
    use crate::events::Events;
    use crate::namespace::SubscribePolicy;
    use crate::outbox::{OutboxLimits, Popped};
    use crate::remote::RemoteUpdate;

    const NODE: u32 = 7;
    const POLICY: SubscribePolicy = SubscribePolicy {
        max_members: 100,
        count: CountPolicy { enabled: false, threshold: 100, interval: Duration::from_secs(5) },
        max_channels: None,
    };

    /// A cluster adapter that records what it is asked to forward.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Forward>>);

    impl Adapter for Recorder {
        fn is_clustered(&self) -> bool {
            true
        }
        fn prepare(&self, _: &str, _: &str) -> Option<BoxFuture<()>> {
            None
        }
        fn forward(&self, _: &str, msg: Forward) {
            self.0.lock().push(msg);
        }
        fn local_change(&self, _: &str, _: LocalChange) {}
        fn terminate_user(&self, _: &str, _: &str) {}
        fn query(&self, _: &str, _: Query) -> Option<BoxFuture<Result<Answer, QueryError>>> {
            None
        }
    }

    /// A namespace on node 7 with connections 7.1 and 7.2 subscribed to `channel`.
    fn subscribed(ns: &Namespace, channel: &str) -> [Arc<Connection>; 2] {
        [1, 2].map(|seq| {
            let conn = Arc::new(Connection::new(SocketId { node: NODE, seq }, OutboxLimits::default()));
            ns.subscribe(&conn, channel, ChannelKind::of(channel), None, POLICY, &Metrics::noop()).expect("joins");
            queued(&conn); // subscription_succeeded, pusher:cache_miss
            conn
        })
    }

    fn queued(conn: &Connection) -> Vec<Bytes> {
        std::iter::from_fn(|| match conn.outbox.pop() {
            Some(Popped::Frame(f)) => Some(f),
            _ => None,
        })
        .collect()
    }

    fn api(exclude: Option<SocketId>) -> Publication<'static> {
        let origin = Origin::Api { cache_ttl: Duration::from_secs(60) };
        Publication { event: "price", data: "7", user_id: None, exclude, origin }
    }

    #[test]
    fn excluded_socket_is_skipped_only_when_this_node_issued_it() {
        let ns = Namespace::new("app", NODE, Events::none(), Arc::new(LocalAdapter));
        let [a, b] = subscribed(&ns, "room");
        assert_eq!(ns.publish(["room"], &api(Some(SocketId { node: NODE, seq: 1 })), &Metrics::noop()), 1);
        assert_eq!((queued(&a).len(), queued(&b).len()), (0, 1));
        // Same sequence number, issued by another node: not this connection.
        assert_eq!(ns.publish(["room"], &api(Some(SocketId { node: 8, seq: 1 })), &Metrics::noop()), 2);
        assert_eq!((queued(&a).len(), queued(&b).len()), (1, 1));
    }

    #[test]
    fn deliveries_are_counted_once_per_recipient_for_local_and_remote_events() {
        let ns = Namespace::new("app", NODE, Events::none(), Arc::new(LocalAdapter));
        let _conns = subscribed(&ns, "room");
        assert_eq!(ns.take_delivered(), 0, "subscription_succeeded is not a delivered message");
        ns.publish(["room"], &api(None), &Metrics::noop());
        ns.publish(["room"], &api(Some(SocketId { node: NODE, seq: 1 })), &Metrics::noop());
        ns.publish(["nobody-here"], &api(None), &Metrics::noop());
        let remote = RemoteUpdate::Event { frame: Bytes::from_static(b"{}"), exclude: None, cache: None };
        ns.apply_remote("room", remote, POLICY.count, &Metrics::noop());
        assert_eq!(ns.take_delivered(), 2 + 1 + 2);
        assert_eq!(ns.take_delivered(), 0, "taking resets the count");
    }

    #[test]
    fn api_event_on_a_cache_channel_is_cached_without_subscribers_and_client_events_never_are() {
        let ns = Namespace::new("app", NODE, Events::none(), Arc::new(LocalAdapter));
        assert_eq!(ns.publish(["cache-btc"], &api(None), &Metrics::noop()), 0);
        let (cached, ttl) = ns.cached("cache-btc").expect("cached with nobody subscribed");
        assert_eq!((&*cached.event, &*cached.data, ttl), ("price", "7", 59));
        let client = Publication { origin: Origin::Client, ..api(None) };
        ns.publish(["private-cache-x"], &client, &Metrics::noop());
        assert!(ns.cached("private-cache-x").is_none());
    }

    #[test]
    fn clustered_publish_forwards_the_same_bytes_exclusion_and_cache() {
        let adapter = Arc::new(Recorder::default());
        let ns = Namespace::new("app", NODE, Events::none(), adapter.clone());
        let [a, _] = subscribed(&ns, "cache-btc");
        let sender = SocketId { node: NODE, seq: 2 };
        ns.publish(["cache-btc"], &api(Some(sender)), &Metrics::noop());
        let sent = queued(&a);
        let forwarded = adapter.0.lock().pop().expect("forwarded");
        assert_eq!((&*forwarded.channel, &forwarded.frame, forwarded.exclude), ("cache-btc", &sent[0], Some(sender)));
        assert_eq!(forwarded.cache.map(|c| c.event), Some(Arc::from("price")));
    }

    #[test]
    fn event_from_another_node_takes_the_local_fan_out_with_its_exclusion_and_cache() {
        let ns = Namespace::new("app", NODE, Events::none(), Arc::new(LocalAdapter));
        let [a, b] = subscribed(&ns, "cache-btc");
        let frame = Bytes::from_static(b"{\"event\":\"price\"}");
        let cache = Some(CachedEvent::new("price", "8", Duration::from_secs(60)));
        let update =
            RemoteUpdate::Event { frame: frame.clone(), exclude: Some(SocketId { node: NODE, seq: 1 }), cache };
        assert!(ns.apply_remote("cache-btc", update, POLICY.count, &Metrics::noop()));
        assert_eq!((queued(&a), queued(&b)), (vec![], vec![frame.clone()]));
        assert_eq!(ns.cached("cache-btc").map(|(c, _)| c.data), Some(Arc::from("8")));
        let unknown = RemoteUpdate::Event { frame, exclude: None, cache: None };
        assert!(!ns.apply_remote("elsewhere", unknown, POLICY.count, &Metrics::noop()), "not needed here");
    }
}
