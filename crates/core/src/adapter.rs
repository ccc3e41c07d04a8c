//! The seam between one node and the rest of a cluster.
//!
//! The core keeps every channel's *local* state; an [`Adapter`] tells other nodes what changed
//! here and feeds what changed elsewhere back into the namespaces (`Namespace::apply_remote`).
//! Two implementations: [`LocalAdapter`] (single node: every method is a no-op, queries are
//! answered from memory) and the Redis adapter in the `herald` binary.
//!
//! Rules for implementations: `forward` and `local_change` are called on hot paths and under
//! channel locks — they must only queue work and return; never block, never take a channel
//! lock. `prepare` and `query` return futures the caller awaits outside any lock.

use bytes::Bytes;
use herald_protocol::socket_id::SocketId;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::channel::CachedEvent;
use crate::namespace::ChannelCounts;

/// A boxed future (no `async_trait`: the trait stays object-safe and dependency-free).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// An event published on this node and already delivered to its local subscribers.
#[derive(Debug, Clone)]
pub struct Forward {
    /// The channel it was published on.
    pub channel: Arc<str>,
    /// The complete JSON frame, encoded once; other nodes deliver these exact bytes.
    pub frame: Bytes,
    /// The connection that must not receive it (`socket_id` exclusion; client-event sender).
    pub exclude: Option<SocketId>,
    /// Cache channels: the event every node keeps as the channel's cache.
    pub cache: Option<CachedEvent>,
}

/// A change of this node's local state that other nodes (or the cluster's shared state) must
/// learn about. Node-level facts: "this node now has user U on channel C", not cluster verdicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalChange {
    /// The channel's last local subscriber left (the adapter may drop its interest).
    Vacated {
        /// The channel now without local subscribers.
        channel: Arc<str>,
    },
    /// First local connection of `user_id` joined the presence channel.
    MemberJoined {
        /// The presence channel.
        channel: Arc<str>,
        /// The member's user id.
        user_id: Arc<str>,
        /// The member's `user_info` as raw JSON, if it sent one.
        user_info: Option<Arc<str>>,
    },
    /// Last local connection of `user_id` left the presence channel.
    MemberLeft {
        /// The presence channel.
        channel: Arc<str>,
        /// The user id no longer present on this node.
        user_id: Arc<str>,
    },
    /// The number of local subscriptions of a channel changed.
    Count {
        /// The channel whose subscriptions changed.
        channel: Arc<str>,
        /// Its subscriptions on this node after the change.
        local: u64,
    },
    /// First local connection signed in as `user_id`.
    UserOnline {
        /// The user now signed in on this node.
        user_id: Arc<str>,
    },
    /// Last local connection signed in as `user_id` closed.
    UserOffline {
        /// The user no longer signed in on this node.
        user_id: Arc<str>,
    },
}

/// Cluster-wide HTTP API queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Occupied channels starting with a prefix.
    Channels {
        /// The name prefix (`filter_by_prefix`; empty for all channels).
        prefix: String,
    },
    /// One channel's counts.
    Channel {
        /// The channel name.
        name: String,
    },
    /// A presence channel's user ids.
    Users {
        /// The presence channel name.
        name: String,
    },
}

/// Answers to [`Query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// To [`Query::Channels`]: each occupied channel with its cluster-wide counts.
    Channels(Vec<(String, ChannelCounts)>),
    /// To [`Query::Channel`]: the channel's cluster-wide counts (zero when unoccupied).
    Channel(ChannelCounts),
    /// To [`Query::Users`]: the distinct user ids present anywhere in the cluster.
    Users(Vec<String>),
}

/// The cluster's shared state could not be read, so a [`Query`] has no answer; carries the
/// reason (e.g. the Redis error).
#[derive(Debug, thiserror::Error)]
#[error("cluster state unavailable: {0}")]
pub struct QueryError(pub String);

/// What a node needs from the rest of the cluster: see the module doc for the rules every
/// implementation must keep.
pub trait Adapter: Send + Sync + 'static {
    /// True when other nodes exist (cluster verdicts such as occupied/vacated then come from
    /// the adapter, not from local state).
    fn is_clustered(&self) -> bool;

    /// Called before a local connection subscribes to `channel`. `None`: ready now. Otherwise
    /// the future resolves once other nodes' messages for the channel reach this node and its
    /// shared state (presence members, counts, cache) was loaded into the namespace.
    fn prepare(&self, app_id: &str, channel: &str) -> Option<BoxFuture<()>>;

    /// Sends a locally published event to the other nodes.
    fn forward(&self, app_id: &str, msg: Forward);

    /// Reports a local state change.
    fn local_change(&self, app_id: &str, change: LocalChange);

    /// Closes every connection signed in as `user_id` on the other nodes.
    fn terminate_user(&self, app_id: &str, user_id: &str);

    /// Cluster-wide query. `None`: answer from this node's memory (single node).
    fn query(&self, app_id: &str, query: Query) -> Option<BoxFuture<Result<Answer, QueryError>>>;

    /// Health for `/ready`: `Err(reason)` when degraded (e.g. Redis unreachable).
    fn health(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Single node: nothing to tell anyone.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalAdapter;

impl Adapter for LocalAdapter {
    fn is_clustered(&self) -> bool {
        false
    }
    fn prepare(&self, _app_id: &str, _channel: &str) -> Option<BoxFuture<()>> {
        None
    }
    fn forward(&self, _app_id: &str, _msg: Forward) {}
    fn local_change(&self, _app_id: &str, _change: LocalChange) {}
    fn terminate_user(&self, _app_id: &str, _user_id: &str) {}
    fn query(&self, _app_id: &str, _query: Query) -> Option<BoxFuture<Result<Answer, QueryError>>> {
        None
    }
}
