//! Channel lifecycle events, as webhooks describe them (PROTOCOL.md 11.4).
//!
//! The core reports what happened through an [`EventSink`]; what is done with it (webhooks:
//! filtering, debouncing, batching, durable delivery) lives outside the core. Occupancy and
//! presence events are emitted while the channel's lock is held, so a sink sees them in the
//! order they happened for that channel (occupied before vacated, added before removed).
//! Therefore `emit` must never block and never take a channel lock: queue and return.

use std::sync::Arc;

/// One event, with the fields its webhook object carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    Occupied { channel: Arc<str> },
    Vacated { channel: Arc<str> },
    MemberAdded { channel: Arc<str>, user_id: Arc<str> },
    MemberRemoved { channel: Arc<str>, user_id: Arc<str> },
    ClientEvent { channel: Arc<str>, event: Arc<str>, data: Arc<str>, socket_id: Arc<str>, user_id: Option<Arc<str>> },
    CacheMiss { channel: Arc<str> },
    SubscriptionCount { channel: Arc<str>, count: u64 },
}

impl ChannelEvent {
    /// The webhook `name` of this event.
    pub fn name(&self) -> &'static str {
        match self {
            ChannelEvent::Occupied { .. } => "channel_occupied",
            ChannelEvent::Vacated { .. } => "channel_vacated",
            ChannelEvent::MemberAdded { .. } => "member_added",
            ChannelEvent::MemberRemoved { .. } => "member_removed",
            ChannelEvent::ClientEvent { .. } => "client_event",
            ChannelEvent::CacheMiss { .. } => "cache_miss",
            ChannelEvent::SubscriptionCount { .. } => "subscription_count",
        }
    }

    pub fn channel(&self) -> &str {
        match self {
            ChannelEvent::Occupied { channel }
            | ChannelEvent::Vacated { channel }
            | ChannelEvent::MemberAdded { channel, .. }
            | ChannelEvent::MemberRemoved { channel, .. }
            | ChannelEvent::ClientEvent { channel, .. }
            | ChannelEvent::CacheMiss { channel }
            | ChannelEvent::SubscriptionCount { channel, .. } => channel,
        }
    }
}

/// Receives channel events of every app. Implementations queue and return at once.
pub trait EventSink: Send + Sync + 'static {
    /// Cheap pre-check so the core can skip building events nobody wants (client events are
    /// on a hot path). `name` is a webhook event name.
    fn wants(&self, app_id: &str, name: &'static str) -> bool;
    fn emit(&self, app_id: &str, event: ChannelEvent);
}

/// Where a namespace sends its events: the sink plus the app id to tag them with.
#[derive(Clone)]
pub struct Events {
    app_id: Arc<str>,
    sink: Option<Arc<dyn EventSink>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("app_id", &self.app_id).field("sink", &self.sink.is_some()).finish()
    }
}

impl Events {
    pub fn new(app_id: &str, sink: Option<Arc<dyn EventSink>>) -> Self {
        Events { app_id: Arc::from(app_id), sink }
    }

    /// No sink: every emit is a no-op.
    pub fn none() -> Self {
        Events { app_id: Arc::from(""), sink: None }
    }

    /// Emits the event built by `make` if the sink wants events called `name`.
    pub fn emit_with(&self, name: &'static str, make: impl FnOnce() -> ChannelEvent) {
        if let Some(sink) = &self.sink {
            if sink.wants(&self.app_id, name) {
                sink.emit(&self.app_id, make());
            }
        }
    }
}

impl Default for Events {
    fn default() -> Self {
        Events::none()
    }
}

/// In a cluster, occupancy and presence verdicts are the cluster's, made by the adapter against
/// shared state; a node's local view must not produce those webhooks. This sink passes
/// everything else through.
pub struct ClusterVerdictsFiltered(pub Arc<dyn EventSink>);

/// The events whose verdict belongs to the cluster adapter.
pub const CLUSTER_VERDICTS: [&str; 4] = ["channel_occupied", "channel_vacated", "member_added", "member_removed"];

impl EventSink for ClusterVerdictsFiltered {
    fn wants(&self, app_id: &str, name: &'static str) -> bool {
        !CLUSTER_VERDICTS.contains(&name) && self.0.wants(app_id, name)
    }
    fn emit(&self, app_id: &str, event: ChannelEvent) {
        self.0.emit(app_id, event)
    }
}
