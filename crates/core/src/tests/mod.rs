//! Unit tests of herald-core, without sockets: the fixtures they share.
//!
//! A test builds namespaces, connections and sessions directly, drives them through the same
//! calls the binary makes, and reads what each connection would have received straight from its
//! outbox ([`take`]), parsed as JSON. Channel lifecycle events go to a [`RecordingSink`], local
//! changes meant for the cluster to a [`RecordingAdapter`], metrics to a no-op recorder. Only
//! the subscription-count timer needs a tokio runtime (with a paused clock).
//!
//! Every call into the publish path (`Namespace::publish` with a `Publication`, `cached`, the
//! cached-event type, `adapter::Forward`, `EventSink`) goes through a helper in this file, so a
//! change of that API is adapted here once.

mod app_changes;
mod cache;
mod counts;
mod hub;
mod node_gone;
mod occupancy;
mod presence;
mod remote;
mod session;
mod watchlist;

use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_protocol::auth::hmac_sha256_hex;
use herald_protocol::outbound;
use herald_protocol::socket_id::SocketId;
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::adapter::{Adapter, Answer, BoxFuture, Forward, LocalAdapter, LocalChange, Query, QueryError};
use crate::app::{App, AppLimits, StaticAppStore};
use crate::channel::{CachedEvent, CountPolicy};
use crate::connection::Connection;
use crate::events::{ChannelEvent, EventKind, EventSink, Events};
use crate::hub::{Hub, HubSettings};
use crate::metrics::Metrics;
use crate::namespace::{JoinAs, Joined, Left, Namespace, SubscribeError, SubscribePolicy};
use crate::outbox::{CloseRequest, OutboxLimits, Popped};
use crate::publish::{Origin, Publication};
use crate::remote::RemoteUpdate;
use crate::session::Session;

pub(crate) const APP_ID: &str = "app-1";
pub(crate) const KEY: &str = "key-1";
pub(crate) const SECRET: &str = "secret-1";

pub(crate) const SUCCEEDED: &str = "pusher_internal:subscription_succeeded";
pub(crate) const MEMBER_ADDED: &str = "pusher_internal:member_added";
pub(crate) const MEMBER_REMOVED: &str = "pusher_internal:member_removed";
pub(crate) const COUNT: &str = "pusher_internal:subscription_count";
pub(crate) const CACHE_MISS: &str = "pusher:cache_miss";
pub(crate) const ERROR: &str = "pusher:error";

pub(crate) fn metrics() -> Metrics {
    Metrics::noop()
}

/// The node id of the namespaces built here (hubs draw their own).
pub(crate) const NODE: u32 = 1;

/// A connection of this node ([`NODE`]) with sequence number `seq` and default outbox limits.
pub(crate) fn conn(seq: u64) -> Arc<Connection> {
    Arc::new(Connection::new(SocketId { node: NODE, seq }, OutboxLimits::default()))
}

// ---------------------------------------------------------------------------------------------
// Reading outboxes
// ---------------------------------------------------------------------------------------------

/// One frame as a client would receive it; `data` is decoded when the wire carries it as a JSON
/// string holding JSON text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Frame {
    pub event: String,
    pub channel: Option<String>,
    pub data: Value,
    pub user_id: Option<String>,
}

pub(crate) fn parse_frame(bytes: &[u8]) -> Frame {
    let v: Value = serde_json::from_slice(bytes).expect("every frame is JSON");
    let data = match &v["data"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
        other => other.clone(),
    };
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    Frame {
        event: text("event").expect("every frame has an event"),
        channel: text("channel"),
        data,
        user_id: text("user_id"),
    }
}

/// Takes every frame queued for `conn`, in order (stops before a close request).
pub(crate) fn take(conn: &Connection) -> Vec<Frame> {
    let mut out = Vec::new();
    while let Some(Popped::Frame(bytes)) = conn.outbox.pop() {
        out.push(parse_frame(&bytes));
    }
    out
}

/// The event names of every frame queued for `conn`.
pub(crate) fn take_events(conn: &Connection) -> Vec<String> {
    take(conn).into_iter().map(|f| f.event).collect()
}

/// Drops the queued frames of `conn` and returns its close request, if one was made.
pub(crate) fn close_request(conn: &Connection) -> Option<CloseRequest> {
    loop {
        match conn.outbox.pop()? {
            Popped::Frame(_) => {}
            Popped::Close(req) => return Some(req),
        }
    }
}

/// The member events (`member_added` / `member_removed`) among `frames`, as (event, user_id).
pub(crate) fn member_frames(frames: &[Frame]) -> Vec<(&'static str, String)> {
    frames
        .iter()
        .filter_map(|f| {
            let name = match f.event.as_str() {
                MEMBER_ADDED => "added",
                MEMBER_REMOVED => "removed",
                _ => return None,
            };
            Some((name, f.data["user_id"].as_str().expect("member frames carry a user_id").to_owned()))
        })
        .collect()
}

/// The counts carried by the `subscription_count` frames among `frames`.
pub(crate) fn count_frames(frames: &[Frame]) -> Vec<u64> {
    frames
        .iter()
        .filter(|f| f.event == COUNT)
        .map(|f| f.data["subscription_count"].as_u64().expect("a count"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Recording sink and adapter
// ---------------------------------------------------------------------------------------------

/// An [`EventSink`] that wants every event and keeps them (and the subscription changes it
/// hears of) in order.
#[derive(Default)]
pub(crate) struct RecordingSink {
    /// Held only to push or drain; tests are single-threaded.
    events: Mutex<Vec<(String, ChannelEvent)>>,
    /// (socket id, channel, subscribed) per [`EventSink::subscription`]; held like `events`.
    subscriptions: Mutex<Vec<(String, String, bool)>>,
}

impl RecordingSink {
    /// Takes the recorded events (checking they were all tagged with [`APP_ID`]).
    pub(crate) fn take(&self) -> Vec<ChannelEvent> {
        std::mem::take(&mut *self.events.lock())
            .into_iter()
            .map(|(app, ev)| {
                assert_eq!(app, APP_ID, "events are tagged with their app");
                ev
            })
            .collect()
    }

    /// Takes the recorded subscription changes.
    pub(crate) fn take_subscriptions(&self) -> Vec<(String, String, bool)> {
        std::mem::take(&mut *self.subscriptions.lock())
    }
}

impl EventSink for RecordingSink {
    fn wants(&self, _app_id: &str, _kind: EventKind) -> bool {
        true
    }
    fn emit(&self, app_id: &str, event: ChannelEvent) {
        self.events.lock().push((app_id.to_owned(), event));
    }
    fn subscription(&self, app_id: &str, socket_id: &str, channel: &str, subscribed: bool) {
        assert_eq!(app_id, APP_ID, "subscription changes are tagged with their app");
        self.subscriptions.lock().push((socket_id.to_owned(), channel.to_owned(), subscribed));
    }
}

pub(crate) fn recording_sink() -> Arc<RecordingSink> {
    Arc::new(RecordingSink::default())
}

/// Where a namespace of [`APP_ID`] would send its events: to `sink`.
pub(crate) fn events_to(sink: &Arc<RecordingSink>) -> Events {
    Events::new(APP_ID, Some(sink.clone()))
}

/// The counts of the `subscription_count` events among `events`.
pub(crate) fn reported_counts(events: &[ChannelEvent]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            ChannelEvent::SubscriptionCount { count, .. } => Some(*count),
            _ => None,
        })
        .collect()
}

/// Shorthands for the recorded events tests compare against.
pub(crate) fn ev_occupied(channel: &str) -> ChannelEvent {
    ChannelEvent::Occupied { channel: Arc::from(channel) }
}
pub(crate) fn ev_vacated(channel: &str) -> ChannelEvent {
    ChannelEvent::Vacated { channel: Arc::from(channel) }
}
pub(crate) fn ev_added(channel: &str, user_id: &str) -> ChannelEvent {
    ChannelEvent::MemberAdded { channel: Arc::from(channel), user_id: Arc::from(user_id) }
}
pub(crate) fn ev_cache_miss(channel: &str) -> ChannelEvent {
    ChannelEvent::CacheMiss { channel: Arc::from(channel) }
}
pub(crate) fn ev_removed(channel: &str, user_id: &str) -> ChannelEvent {
    ChannelEvent::MemberRemoved { channel: Arc::from(channel), user_id: Arc::from(user_id) }
}

/// An event a node forwarded to the cluster, as recorded by [`RecordingAdapter`].
#[derive(Debug)]
pub(crate) struct Forwarded {
    pub channel: Arc<str>,
    pub frame: Frame,
    /// The connection the other nodes must skip.
    pub exclude: Option<SocketId>,
}

/// A clustered [`Adapter`] that records what the node tells it and answers nothing.
#[derive(Default)]
pub(crate) struct RecordingAdapter {
    /// Held only to push or drain.
    changes: Mutex<Vec<LocalChange>>,
    /// Held only to push or drain.
    forwarded: Mutex<Vec<Forwarded>>,
}

impl RecordingAdapter {
    pub(crate) fn take_changes(&self) -> Vec<LocalChange> {
        std::mem::take(&mut *self.changes.lock())
    }

    pub(crate) fn take_forwarded(&self) -> Vec<Forwarded> {
        std::mem::take(&mut *self.forwarded.lock())
    }
}

impl Adapter for RecordingAdapter {
    fn is_clustered(&self) -> bool {
        true
    }
    fn prepare(&self, _app_id: &str, _channel: &str) -> Option<BoxFuture<()>> {
        None
    }
    fn forward(&self, app_id: &str, msg: Forward) {
        assert_eq!(app_id, APP_ID);
        self.forwarded.lock().push(Forwarded {
            channel: msg.channel,
            frame: parse_frame(&msg.frame),
            exclude: msg.exclude,
        });
    }
    fn local_change(&self, app_id: &str, change: LocalChange) {
        assert_eq!(app_id, APP_ID);
        self.changes.lock().push(change);
    }
    fn terminate_user(&self, _app_id: &str, _user_id: &str) {}
    fn query(&self, _app_id: &str, _query: Query) -> Option<BoxFuture<Result<Answer, QueryError>>> {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Namespaces, subscriptions, remote updates
// ---------------------------------------------------------------------------------------------

/// A single-node namespace of [`APP_ID`] reporting to a fresh recording sink.
pub(crate) fn namespace() -> (Namespace, Arc<RecordingSink>) {
    let sink = recording_sink();
    let ns = Namespace::new(APP_ID, NODE, events_to(&sink), Arc::new(LocalAdapter));
    (ns, sink)
}

/// A namespace of a clustered node: local changes are recorded by the returned adapter.
pub(crate) fn clustered_namespace() -> (Namespace, Arc<RecordingSink>, Arc<RecordingAdapter>) {
    let sink = recording_sink();
    let adapter = Arc::new(RecordingAdapter::default());
    let ns = Namespace::new(APP_ID, NODE, events_to(&sink), adapter.clone());
    (ns, sink, adapter)
}

/// Subscription counts off.
pub(crate) const NO_COUNTS: CountPolicy = CountPolicy { enabled: false, threshold: 0, interval: Duration::ZERO };

pub(crate) fn counts_on(threshold: usize, interval: Duration) -> CountPolicy {
    CountPolicy { enabled: true, threshold, interval }
}

/// Subscribes `conn` to a non-presence channel.
pub(crate) fn subscribe(ns: &Namespace, conn: &Arc<Connection>, channel: &str, count: CountPolicy) -> Joined {
    let policy = SubscribePolicy { max_members: 100, count, max_channels: None };
    let kind = herald_protocol::channel::ChannelKind::of(channel);
    ns.subscribe(conn, channel, kind, None, policy, &metrics()).expect("only presence subscriptions can be refused")
}

/// Joins presence channel `channel` as `user_id` (with `info`, compact JSON), at most
/// `max_members` members.
pub(crate) fn join_limited(
    ns: &Namespace,
    conn: &Arc<Connection>,
    channel: &str,
    user_id: &str,
    info: Option<&str>,
    max_members: usize,
) -> Result<Joined, SubscribeError> {
    let policy = SubscribePolicy { max_members, count: NO_COUNTS, max_channels: None };
    let join_as = JoinAs { user_id: Arc::from(user_id), user_info: info.map(Arc::from) };
    let kind = herald_protocol::channel::ChannelKind::of(channel);
    assert!(kind.is_presence(), "{channel} is not a presence channel");
    ns.subscribe(conn, channel, kind, Some(join_as), policy, &metrics())
}

/// Joins presence channel `channel` as `user_id` without info (limit 100 members).
pub(crate) fn join(ns: &Namespace, conn: &Arc<Connection>, channel: &str, user_id: &str) -> Joined {
    join_limited(ns, conn, channel, user_id, None, 100).expect("under the member limit")
}

pub(crate) fn leave(ns: &Namespace, conn: &Connection, channel: &str) -> Option<Left> {
    ns.unsubscribe(conn, channel, NO_COUNTS, &metrics())
}

/// Applies a remote update with subscription counts off.
pub(crate) fn apply(ns: &Namespace, channel: &str, update: RemoteUpdate) -> bool {
    ns.apply_remote(channel, update, NO_COUNTS, &metrics())
}

/// A snapshot of other nodes' members (node, user_id) and counts (node, subscriptions).
pub(crate) fn snapshot(members: &[(u32, &str)], counts: &[(u32, u64)], replace: bool) -> RemoteUpdate {
    RemoteUpdate::Snapshot {
        members: members.iter().map(|(n, u)| (*n, Arc::from(*u), None)).collect(),
        counts: counts.to_vec(),
        cache: None,
        replace,
    }
}

pub(crate) fn remote_joined(node: u32, user_id: &str, info: Option<&str>) -> RemoteUpdate {
    RemoteUpdate::MemberJoined { node, user_id: Arc::from(user_id), user_info: info.map(Arc::from) }
}

pub(crate) fn remote_left(node: u32, user_id: &str) -> RemoteUpdate {
    RemoteUpdate::MemberLeft { node, user_id: Arc::from(user_id) }
}

// ---------------------------------------------------------------------------------------------
// The publish path (adapt here when its API changes)
// ---------------------------------------------------------------------------------------------

/// The socket id of this node's connection `seq`.
fn local_socket(seq: u64) -> SocketId {
    SocketId { node: NODE, seq }
}

/// Publishes `event` with `data` to the local subscribers of `channel` except `exclude` (a
/// sequence number of this node), never caching it (as a client event). Returns how many
/// connections it was queued for.
pub(crate) fn publish(ns: &Namespace, channel: &str, event: &str, data: &str, exclude: Option<u64>) -> usize {
    let exclude = exclude.map(local_socket);
    let publication = Publication { event, data, user_id: None, exclude, origin: Origin::Client };
    ns.publish([channel], &publication, &metrics())
}

/// An HTTP publish to cache channel `channel`, kept as its cache for `ttl`.
pub(crate) fn publish_cached(ns: &Namespace, channel: &str, event: &str, data: &str, ttl: Duration) -> usize {
    let origin = Origin::Api { cache_ttl: ttl };
    ns.publish([channel], &Publication { event, data, user_id: None, exclude: None, origin }, &metrics())
}

/// A cached event (as a snapshot or a remote event carries it).
pub(crate) fn cached_event(event: &str, data: &str, expires: Instant) -> CachedEvent {
    CachedEvent { event: Arc::from(event), data: Arc::from(data), expires }
}

/// Sets the cache of an existing channel directly (e.g. one that already expired).
pub(crate) fn set_cache(ns: &Namespace, channel: &str, cache: CachedEvent) {
    let ch = ns.channels.get(channel).map(|c| c.value().clone()).expect("channel exists");
    ch.state.write().cache = Some(cache);
}

/// The live cache of `channel` as (event, data, remaining whole seconds).
pub(crate) fn cached(ns: &Namespace, channel: &str) -> Option<(String, String, u64)> {
    ns.cached(channel).map(|(c, secs)| (c.event.to_string(), c.data.to_string(), secs))
}

/// The event and data of the cache `channel` holds, live or not.
pub(crate) fn stored_cache(ns: &Namespace, channel: &str) -> Option<(String, String)> {
    let ch = ns.channels.get(channel).map(|c| c.value().clone())?;
    let st = ch.state.read();
    st.cache.as_ref().map(|c| (c.event.to_string(), c.data.to_string()))
}

/// A merging snapshot that carries only a cached event.
pub(crate) fn cache_snapshot(event: &str, data: &str, expires: Instant) -> RemoteUpdate {
    RemoteUpdate::Snapshot {
        members: Vec::new(),
        counts: Vec::new(),
        cache: Some(cached_event(event, data, expires)),
        replace: false,
    }
}

/// An event another node published, as the cluster delivers it here.
pub(crate) fn remote_event(channel: &str, event: &str, data: &str, exclude: Option<u64>) -> RemoteUpdate {
    let frame = outbound::channel_event(event, channel, data, None);
    RemoteUpdate::Event { frame, exclude: exclude.map(local_socket), cache: None }
}

// ---------------------------------------------------------------------------------------------
// Hub and sessions
// ---------------------------------------------------------------------------------------------

/// The test app ([`APP_ID`], [`KEY`], [`SECRET`]) with `limits`.
pub(crate) fn app(limits: AppLimits) -> App {
    App { id: APP_ID.to_owned(), key: KEY.to_owned(), secret: SECRET.to_owned(), limits }
}

/// A single-node hub serving `apps`, reporting events to the returned sink.
pub(crate) fn hub_with(apps: Vec<App>, settings: HubSettings) -> (Arc<Hub>, Arc<RecordingSink>) {
    let sink = recording_sink();
    let hub = Hub::new(
        Arc::new(StaticAppStore::new(apps)),
        settings,
        metrics(),
        Some(sink.clone() as Arc<dyn EventSink>),
        Arc::new(LocalAdapter),
    );
    (hub, sink)
}

/// A single-node hub serving the test app with `limits`.
pub(crate) fn hub(limits: AppLimits) -> (Arc<Hub>, Arc<RecordingSink>) {
    hub_with(vec![app(limits)], HubSettings::default())
}

/// A clustered hub serving the test app: local changes and forwards go to the returned adapter.
pub(crate) fn clustered_hub(limits: AppLimits) -> (Arc<Hub>, Arc<RecordingAdapter>) {
    let adapter = Arc::new(RecordingAdapter::default());
    let hub = Hub::new(
        Arc::new(StaticAppStore::new([app(limits)])),
        HubSettings::default(),
        metrics(),
        None,
        adapter.clone(),
    );
    (hub, adapter)
}

/// Connects to the test app and takes the `connection_established` frame.
pub(crate) fn connect(hub: &Arc<Hub>) -> Session {
    let session = hub.connect(KEY, Some("7"), false).expect("admitted");
    let first = take(session.connection());
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].event, "pusher:connection_established");
    session
}

/// `auth` for subscribing `session` to `channel` (with `channel_data` on presence channels).
pub(crate) fn channel_auth(session: &Session, channel: &str, channel_data: Option<&str>) -> String {
    let mut message = format!("{}:{channel}", session.connection().socket_id_str);
    if let Some(cd) = channel_data {
        message.push(':');
        message.push_str(cd);
    }
    format!("{KEY}:{}", hmac_sha256_hex(SECRET.as_bytes(), message.as_bytes()))
}

/// A `pusher:subscribe` text frame.
pub(crate) fn subscribe_text(channel: &str, auth: Option<&str>, channel_data: Option<&str>) -> String {
    let mut data = json!({ "channel": channel });
    if let Some(a) = auth {
        data["auth"] = json!(a);
    }
    if let Some(cd) = channel_data {
        data["channel_data"] = json!(cd);
    }
    json!({ "event": "pusher:subscribe", "data": data }).to_string()
}

pub(crate) fn unsubscribe_text(channel: &str) -> String {
    json!({ "event": "pusher:unsubscribe", "data": { "channel": channel } }).to_string()
}

/// Subscribes `session` to `channel` through a signed text frame; presence channels join as
/// `{"user_id": user_id}`. Handled completely (single node).
pub(crate) fn subscribe_session(session: &mut Session, channel: &str, user_id: Option<&str>) {
    let channel_data = user_id.map(|u| json!({ "user_id": u }).to_string());
    let kind = herald_protocol::channel::ChannelKind::of(channel);
    let auth = kind.requires_signature().then(|| channel_auth(session, channel, channel_data.as_deref()));
    let pending = session.handle_text(&subscribe_text(channel, auth.as_deref(), channel_data.as_deref()));
    assert!(pending.is_none(), "a single node joins at once");
}

/// A signed `pusher:signin` text frame for `session` carrying `user_data` (JSON text).
pub(crate) fn signin_text(session: &Session, user_data: &str) -> String {
    let message = format!("{}::user::{user_data}", session.connection().socket_id_str);
    let auth = format!("{KEY}:{}", hmac_sha256_hex(SECRET.as_bytes(), message.as_bytes()));
    json!({ "event": "pusher:signin", "data": { "auth": auth, "user_data": user_data } }).to_string()
}
