//! The node: apps, their namespaces, socket ids, admission of new connections.
//!
//! One [`Hub`] per running server, shared (`Arc`) by every connection task and HTTP handler.
//! It owns no lock of its own on any hot path: namespaces sit in a sharded map created lazily
//! per app, socket ids come from an atomic counter.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use herald_protocol::codes::CloseCode;
use herald_protocol::outbound;
use herald_protocol::socket_id::SocketId;
use rand::Rng;

use crate::adapter::Adapter;
use crate::app::{App, AppChange, AppStore};
use crate::channel::CountPolicy;
use crate::connection::Connection;
use crate::events::{ClusterVerdictsFiltered, EventSink, Events};
use crate::metrics::Metrics;
use crate::namespace::Namespace;
use crate::outbox::OutboxLimits;
use crate::session::Session;

/// Node-wide settings the core needs (the rest of the config stays in the binary).
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Seconds, sent to clients in `connection_established` (PROTOCOL.md 2.4).
    pub activity_timeout: u64,
    /// Bounds of every connection's send queue; overflowing them closes it with 4100.
    pub outbox: OutboxLimits,
    /// Node-wide connection cap; beyond it new connections are closed with 4100.
    pub max_connections: Option<u64>,
    /// Missing `protocol` query parameter: false = accept as 7, true = close 4008.
    pub strict_protocol_param: bool,
    /// Lifetime of a cache channel's cached event (PROTOCOL.md 9.1).
    pub cache_ttl: Duration,
    /// Above this many subscribers, subscription counts are throttled (9.2)...
    pub subscription_count_threshold: usize,
    /// ...to one update per this interval.
    pub subscription_count_interval: Duration,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            activity_timeout: 120,
            outbox: OutboxLimits::default(),
            max_connections: None,
            strict_protocol_param: false,
            cache_ttl: Duration::from_secs(1800),
            subscription_count_threshold: 100,
            subscription_count_interval: Duration::from_secs(5),
        }
    }
}

/// A refused connection: close code plus the message of the `pusher:error` sent before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    /// The close code the socket is closed with.
    pub code: CloseCode,
    /// The `pusher:error` message sent before the close.
    pub message: String,
}

impl Refusal {
    fn new(code: CloseCode, message: impl Into<String>) -> Self {
        Refusal { code, message: message.into() }
    }
}

/// The node's state: apps, per-app namespaces, socket ids, the connection count and the
/// adapter to the rest of the cluster.
pub struct Hub {
    apps: Arc<dyn AppStore>,
    /// One namespace per app id, created on first use and kept (an empty namespace is a few
    /// hundred bytes; apps are few).
    namespaces: DashMap<String, Arc<Namespace>>,
    /// First half of every socket id this process issues, drawn once (PROTOCOL.md 2.5).
    node: u32,
    /// Second half: incremented per connection, so ids are unique for the life of the process.
    next_seq: AtomicU64,
    /// Connections admitted on this node (all apps), for the node-wide cap.
    connections: AtomicUsize,
    /// Bumped by [`Hub::apps_changed`] after the app store's view changed; each session compares
    /// it with the value it last saw before handling a frame and re-reads its app when it moved
    /// (one atomic load per frame instead of a store lookup).
    apps_generation: AtomicU64,
    /// Cleared when shutdown starts: new connections are then refused with 4200.
    accepting: AtomicBool,
    /// Woken whenever `connections` drops to 0 (shutdown waits for that in
    /// [`Hub::all_disconnected`]).
    emptied: tokio::sync::Notify,
    /// Node-wide settings, fixed at start-up.
    pub settings: HubSettings,
    /// Metric handles shared by every connection and channel.
    pub metrics: Metrics,
    /// Receives channel lifecycle events (webhooks); `None` when no app has webhooks.
    events: Option<Arc<dyn EventSink>>,
    /// The rest of the cluster; [`LocalAdapter`] on a single node.
    adapter: Arc<dyn Adapter>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("node", &self.node).finish_non_exhaustive()
    }
}

impl Hub {
    /// A node with a fresh random node id, admitting connections, with no namespace yet.
    pub fn new(
        apps: Arc<dyn AppStore>,
        settings: HubSettings,
        metrics: Metrics,
        events: Option<Arc<dyn EventSink>>,
        adapter: Arc<dyn Adapter>,
    ) -> Arc<Self> {
        let mut rng = rand::rng();
        Arc::new(Hub {
            apps,
            namespaces: DashMap::new(),
            node: rng.random_range(1..=i32::MAX as u32),
            next_seq: AtomicU64::new(rng.random_range(1..=1_000_000_000)),
            connections: AtomicUsize::new(0),
            apps_generation: AtomicU64::new(0),
            accepting: AtomicBool::new(true),
            emptied: tokio::sync::Notify::new(),
            settings,
            metrics,
            events,
            adapter,
        })
    }

    /// Tells the event sink that a connection subscribed to or left a channel
    /// ([`EventSink::subscription`]).
    pub(crate) fn subscription_changed(&self, app_id: &str, socket_id: &str, channel: &str, subscribed: bool) {
        if let Some(sink) = &self.events {
            sink.subscription(app_id, socket_id, channel, subscribed);
        }
    }

    /// The rest of the cluster ([`crate::adapter::LocalAdapter`] on a single node).
    pub fn adapter(&self) -> &Arc<dyn Adapter> {
        &self.adapter
    }

    /// Every namespace created so far (cluster re-registration, node_gone).
    pub fn namespaces(&self) -> Vec<(String, Arc<Namespace>)> {
        self.namespaces.iter().map(|e| (e.key().clone(), e.value().clone())).collect()
    }

    /// Where apps are looked up.
    pub fn apps(&self) -> &dyn AppStore {
        &*self.apps
    }

    /// The generation of the app store's view (see [`Hub::apps_changed`]).
    pub fn apps_generation(&self) -> u64 {
        self.apps_generation.load(Ordering::Acquire)
    }

    /// Applies a change of the app store's view, which the store has already made visible
    /// through [`Hub::apps`]: sessions pick up changed apps (a rotated secret, new limits, new
    /// flags) before their next frame, and the connections of a disabled or removed app are
    /// closed with 4003. Limits apply to new work only: nothing already admitted is re-checked.
    pub fn apps_changed(&self, changes: &[AppChange]) {
        self.apps_generation.fetch_add(1, Ordering::AcqRel);
        for change in changes {
            let (id, message) = match change {
                AppChange::Updated(app) if !app.limits.enabled => (app.id.as_str(), "Application is disabled"),
                AppChange::Updated(_) => continue,
                AppChange::Removed(id) => (id.as_str(), "Application was removed"),
            };
            if let Some(ns) = self.namespaces.get(id) {
                ns.close_all(CloseCode::APP_DISABLED, message);
            }
        }
    }

    /// This node's id: the first half of every socket id it issues.
    pub fn node(&self) -> u32 {
        self.node
    }

    /// The namespace of an app (created on first use).
    pub fn namespace(&self, app_id: &str) -> Arc<Namespace> {
        if let Some(ns) = self.namespaces.get(app_id) {
            return ns.value().clone();
        }
        self.namespaces
            .entry(app_id.to_owned())
            .or_insert_with(|| {
                let sink = match &self.events {
                    Some(sink) if self.adapter.is_clustered() => {
                        Some(Arc::new(ClusterVerdictsFiltered(sink.clone())) as Arc<dyn EventSink>)
                    }
                    other => other.clone(),
                };
                let ns = Namespace::new(app_id, self.node, Events::new(app_id, sink), self.adapter.clone());
                Arc::new(ns.with_connections_gauge(self.metrics.app_connections(app_id)))
            })
            .value()
            .clone()
    }

    /// Stops admitting connections (graceful shutdown step 1).
    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::Release);
    }

    /// False once shutdown has started.
    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::Acquire)
    }

    /// Connections currently open on this node.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }

    /// Admission (PROTOCOL.md 2.2): runs the checks in the specified order and, on success,
    /// returns the session with `pusher:connection_established` already queued as its first frame.
    pub fn connect(self: &Arc<Self>, app_key: &str, protocol: Option<&str>, secure: bool) -> Result<Session, Refusal> {
        if !self.is_accepting() {
            return Err(Refusal::new(CloseCode::RECONNECT, "Server is shutting down; reconnect"));
        }
        match protocol {
            None if self.settings.strict_protocol_param => {
                return Err(Refusal::new(CloseCode::NO_PROTOCOL, "No protocol version supplied"));
            }
            None => {}
            Some(p) => match p.parse::<u32>() {
                Ok(5..=7) => {}
                _ => {
                    return Err(Refusal::new(
                        CloseCode::UNSUPPORTED_PROTOCOL,
                        format!("Unsupported protocol version: {p}"),
                    ))
                }
            },
        }
        let app: Arc<App> = self
            .apps
            .by_key(app_key)
            .ok_or_else(|| Refusal::new(CloseCode::APP_NOT_FOUND, format!("App key {app_key} not in this cluster")))?;
        if !app.limits.enabled {
            return Err(Refusal::new(CloseCode::APP_DISABLED, "Application is disabled"));
        }
        if app.limits.force_tls && !secure {
            return Err(Refusal::new(CloseCode::APP_ONLY_TLS, "Application only accepts TLS connections"));
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Connection::new(SocketId { node: self.node, seq }, self.settings.outbox));
        let ns = self.namespace(&app.id);
        if !ns.add_connection(&conn, app.limits.max_connections) {
            return Err(Refusal::new(CloseCode::APP_OVER_QUOTA, "Application is over its connection quota"));
        }
        let prev = self.connections.fetch_add(1, Ordering::AcqRel);
        if self.settings.max_connections.is_some_and(|max| prev as u64 >= max) {
            self.release_slot();
            ns.remove_connection(seq);
            return Err(Refusal::new(CloseCode::OVER_CAPACITY, "Server is over capacity"));
        }
        self.metrics.connections.increment(1.0);
        self.metrics.connections_total.increment(1);
        conn.send(outbound::connection_established(&conn.socket_id_str, self.settings.activity_timeout), &self.metrics);
        Ok(Session::new(self.clone(), app, ns, conn))
    }

    /// How subscription counts are announced for `app`.
    pub fn count_policy(&self, app: &App) -> CountPolicy {
        CountPolicy {
            enabled: app.limits.enable_subscription_count,
            threshold: self.settings.subscription_count_threshold,
            interval: self.settings.subscription_count_interval,
        }
    }

    /// Drops empty channels whose cache expired, in every app (run periodically).
    pub fn sweep(&self) {
        for ns in self.namespaces.iter() {
            ns.sweep();
        }
    }

    /// Connections, subscriptions and channels held on this node, summed over the apps (see
    /// [`Namespace::footprint`]).
    pub fn footprint(&self) -> u64 {
        self.namespaces.iter().map(|ns| ns.footprint()).sum()
    }

    /// Asks every connection on this node to close with `code` (graceful shutdown).
    pub fn close_all(&self, code: CloseCode, message: &str) {
        for ns in self.namespaces.iter() {
            ns.close_all(code, message);
        }
    }

    /// Every live connection on this node, in random order (a drain closes them in slices).
    pub fn connections(&self) -> Vec<Arc<Connection>> {
        use rand::seq::SliceRandom;
        let mut all: Vec<Arc<Connection>> = self.namespaces.iter().flat_map(|ns| ns.connections()).collect();
        all.shuffle(&mut rand::rng());
        all
    }

    /// Returns once no connection is open on this node (graceful shutdown waits for the
    /// sessions to end). New ones may still be admitted meanwhile unless
    /// [`Hub::stop_accepting`] was called.
    pub async fn all_disconnected(&self) {
        loop {
            // Registered before the count is read, so a drop to 0 in between is not missed.
            let mut emptied = std::pin::pin!(self.emptied.notified());
            emptied.as_mut().enable();
            if self.connection_count() == 0 {
                return;
            }
            emptied.await;
        }
    }

    /// Called once when a session ends.
    pub(crate) fn disconnected(&self) {
        self.release_slot();
        self.metrics.connections.decrement(1.0);
    }

    fn release_slot(&self) {
        if self.connections.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.emptied.notify_waiters();
        }
    }
}
