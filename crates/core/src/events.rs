//! Channel lifecycle events, as webhooks describe them (PROTOCOL.md 11.4).
//!
//! [`EventKind`] is the one list of event kinds (and their webhook names); [`EventKinds`] is
//! the bitset that webhook configuration, sinks and the cluster's verdict filter share.
//! The core reports what happened through an [`EventSink`]; what is done with it (webhooks:
//! filtering, debouncing, batching, durable delivery) lives outside the core. Occupancy and
//! presence events are emitted while the channel's lock is held, so a sink sees them in the
//! order they happened for that channel (occupied before vacated, added before removed).
//! Therefore `emit` must never block and never take a channel lock: queue and return.
//!
//! The sink also hears of each connection's subscriptions ([`EventSink::subscription`]), which
//! are not webhook events: a default no-op that the live debug console implements.

use std::fmt;
use std::sync::Arc;

use herald_protocol::channel::ChannelKind;

/// The kinds of channel event, as webhooks name them (PROTOCOL.md 11.4). The one list of
/// them: webhook configuration parses these names, sinks filter by kind with [`EventKinds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `channel_occupied`: the channel got its first subscriber.
    Occupied,
    /// `channel_vacated`: its last subscriber left.
    Vacated,
    /// `member_added`: a user's first connection joined a presence channel.
    MemberAdded,
    /// `member_removed`: a user's last connection left a presence channel.
    MemberRemoved,
    /// `client_event`: a client event was accepted.
    ClientEvent,
    /// `cache_miss`: a subscriber found a cache channel empty.
    CacheMiss,
    /// `subscription_count`: the channel's subscription count changed.
    SubscriptionCount,
}

impl EventKind {
    /// Every kind, in the order the documentation and configuration errors list them.
    pub const ALL: [EventKind; 7] = [
        EventKind::Occupied,
        EventKind::Vacated,
        EventKind::MemberAdded,
        EventKind::MemberRemoved,
        EventKind::ClientEvent,
        EventKind::CacheMiss,
        EventKind::SubscriptionCount,
    ];

    /// The webhook `name` of events of this kind.
    pub const fn name(self) -> &'static str {
        match self {
            EventKind::Occupied => "channel_occupied",
            EventKind::Vacated => "channel_vacated",
            EventKind::MemberAdded => "member_added",
            EventKind::MemberRemoved => "member_removed",
            EventKind::ClientEvent => "client_event",
            EventKind::CacheMiss => "cache_miss",
            EventKind::SubscriptionCount => "subscription_count",
        }
    }

    /// The kind a webhook event name stands for.
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`EventKind`]s, one bit each: `Copy`, and [`EventKinds::contains`] is one AND,
/// since sinks check it on the client-event path.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct EventKinds(u8);

impl EventKinds {
    /// The empty set.
    pub const NONE: EventKinds = EventKinds(0);

    /// The set of `kinds`.
    pub const fn of(kinds: &[EventKind]) -> EventKinds {
        let mut bits = 0;
        let mut i = 0;
        while i < kinds.len() {
            bits |= kinds[i].bit();
            i += 1;
        }
        EventKinds(bits)
    }

    /// Adds `kind`.
    pub fn insert(&mut self, kind: EventKind) {
        self.0 |= kind.bit();
    }

    /// Whether `kind` is in the set.
    pub const fn contains(self, kind: EventKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// Whether the two sets share a kind.
    pub const fn intersects(self, other: EventKinds) -> bool {
        self.0 & other.0 != 0
    }

    /// The kinds of either set.
    pub const fn union(self, other: EventKinds) -> EventKinds {
        EventKinds(self.0 | other.0)
    }

    /// Whether the set has no kind.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in the set, in [`EventKind::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = EventKind> {
        EventKind::ALL.into_iter().filter(move |k| self.contains(*k))
    }

    /// The webhook names of the kinds in the set, in [`EventKind::ALL`] order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        self.iter().map(EventKind::name)
    }
}

impl FromIterator<EventKind> for EventKinds {
    fn from_iter<I: IntoIterator<Item = EventKind>>(iter: I) -> Self {
        let mut set = EventKinds::NONE;
        for kind in iter {
            set.insert(kind);
        }
        set
    }
}

impl fmt::Debug for EventKinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// One event, with the fields its webhook object carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    /// `channel_occupied` ([`EventKind::Occupied`]).
    Occupied {
        /// The channel that got its first subscriber.
        channel: Arc<str>,
    },
    /// `channel_vacated` ([`EventKind::Vacated`]).
    Vacated {
        /// The channel whose last subscriber left.
        channel: Arc<str>,
    },
    /// `member_added` ([`EventKind::MemberAdded`]).
    MemberAdded {
        /// The presence channel.
        channel: Arc<str>,
        /// The user who joined it.
        user_id: Arc<str>,
    },
    /// `member_removed` ([`EventKind::MemberRemoved`]).
    MemberRemoved {
        /// The presence channel.
        channel: Arc<str>,
        /// The user who left it.
        user_id: Arc<str>,
    },
    /// `client_event` ([`EventKind::ClientEvent`]).
    ClientEvent {
        /// The channel the client event was sent on.
        channel: Arc<str>,
        /// Its `client-` event name.
        event: Arc<str>,
        /// Its `data`, the string that was relayed.
        data: Arc<str>,
        /// The sender's socket id.
        socket_id: Arc<str>,
        /// The sender's presence user id (presence channels only).
        user_id: Option<Arc<str>>,
    },
    /// `cache_miss` ([`EventKind::CacheMiss`]).
    CacheMiss {
        /// The cache channel that had nothing cached.
        channel: Arc<str>,
    },
    /// `subscription_count` ([`EventKind::SubscriptionCount`]).
    SubscriptionCount {
        /// The channel whose count changed.
        channel: Arc<str>,
        /// Its subscription count, cluster-wide.
        count: u64,
    },
}

impl ChannelEvent {
    /// What kind of event this is.
    pub fn kind(&self) -> EventKind {
        match self {
            ChannelEvent::Occupied { .. } => EventKind::Occupied,
            ChannelEvent::Vacated { .. } => EventKind::Vacated,
            ChannelEvent::MemberAdded { .. } => EventKind::MemberAdded,
            ChannelEvent::MemberRemoved { .. } => EventKind::MemberRemoved,
            ChannelEvent::ClientEvent { .. } => EventKind::ClientEvent,
            ChannelEvent::CacheMiss { .. } => EventKind::CacheMiss,
            ChannelEvent::SubscriptionCount { .. } => EventKind::SubscriptionCount,
        }
    }

    /// The webhook `name` of this event.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// The channel it happened on.
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
    /// on a hot path).
    fn wants(&self, app_id: &str, kind: EventKind) -> bool;
    /// Takes one event of app `app_id`; called under the channel's lock, so it only queues.
    fn emit(&self, app_id: &str, event: ChannelEvent);
    /// Connection `socket_id` of app `app_id` subscribed to `channel` (`subscribed`), or left
    /// it (an unsubscribe, or the connection closing). Called by the session with no lock
    /// held, once per change (a repeated subscribe is not one): after joining (so after
    /// `channel_occupied`), before leaving (so before `channel_vacated`). Not a webhook: the
    /// default does nothing; an implementation must return at once and build nothing it does
    /// not keep (it runs on every subscribe and on every disconnect, per channel).
    fn subscription(&self, app_id: &str, socket_id: &str, channel: &str, subscribed: bool) {
        let _ = (app_id, socket_id, channel, subscribed);
    }
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
    /// Events of app `app_id`, sent to `sink` (none: dropped).
    pub fn new(app_id: &str, sink: Option<Arc<dyn EventSink>>) -> Self {
        Events { app_id: Arc::from(app_id), sink }
    }

    /// No sink: every emit is a no-op.
    pub fn none() -> Self {
        Events { app_id: Arc::from(""), sink: None }
    }

    /// Reports the event of `kind` built by `make`, on a channel of kind `channel`, through
    /// [`report`].
    pub fn emit_with(&self, kind: EventKind, channel: ChannelKind, make: impl FnOnce() -> ChannelEvent) {
        if let Some(sink) = &self.sink {
            report(&**sink, &self.app_id, kind, channel, make);
        }
    }
}

impl Default for Events {
    fn default() -> Self {
        Events::none()
    }
}

/// The one function that reports a channel event, used by every namespace (through
/// [`Events`]) and by the cluster adapter's verdicts: internal channels report nothing
/// ([`ChannelKind::is_internal`]); otherwise `make` builds the event only if `sink` wants
/// events of `kind`.
pub fn report(
    sink: &dyn EventSink,
    app_id: &str,
    kind: EventKind,
    channel: ChannelKind,
    make: impl FnOnce() -> ChannelEvent,
) {
    if !channel.is_internal() && sink.wants(app_id, kind) {
        sink.emit(app_id, make());
    }
}

/// In a cluster, occupancy and presence verdicts are the cluster's, made by the adapter against
/// shared state; a node's local view must not produce those webhooks. This sink passes
/// everything else through.
pub struct ClusterVerdictsFiltered(pub Arc<dyn EventSink>);

/// The events whose verdict belongs to the cluster adapter.
pub const CLUSTER_VERDICTS: EventKinds =
    EventKinds::of(&[EventKind::Occupied, EventKind::Vacated, EventKind::MemberAdded, EventKind::MemberRemoved]);

impl EventSink for ClusterVerdictsFiltered {
    fn wants(&self, app_id: &str, kind: EventKind) -> bool {
        !CLUSTER_VERDICTS.contains(kind) && self.0.wants(app_id, kind)
    }
    fn emit(&self, app_id: &str, event: ChannelEvent) {
        self.0.emit(app_id, event)
    }
    fn subscription(&self, app_id: &str, socket_id: &str, channel: &str, subscribed: bool) {
        self.0.subscription(app_id, socket_id, channel, subscribed)
    }
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;

    use super::*;

    /// Wants every kind but `ClientEvent`; keeps what it is given.
    #[derive(Default)]
    struct Kept(Mutex<Vec<ChannelEvent>>);

    impl EventSink for Kept {
        fn wants(&self, _: &str, kind: EventKind) -> bool {
            kind != EventKind::ClientEvent
        }
        fn emit(&self, _: &str, event: ChannelEvent) {
            self.0.lock().push(event);
        }
    }

    #[test]
    fn internal_channels_report_nothing_and_unwanted_events_are_never_built() {
        let sink = Arc::new(Kept::default());
        let events = Events::new("app", Some(sink.clone()));
        let occupied = |c: &str| ChannelEvent::Occupied { channel: c.into() };
        events.emit_with(EventKind::Occupied, ChannelKind::ServerToUser, || occupied("#server-to-user-u"));
        events.emit_with(EventKind::Occupied, ChannelKind::Public, || occupied("room"));
        events.emit_with(EventKind::ClientEvent, ChannelKind::Private, || panic!("built although not wanted"));
        assert_eq!(*sink.0.lock(), [occupied("room")]);
    }

    /// Counts the subscription changes it hears of.
    #[derive(Default)]
    struct Subscriptions(Mutex<Vec<(String, bool)>>);

    impl EventSink for Subscriptions {
        fn wants(&self, _: &str, _: EventKind) -> bool {
            true
        }
        fn emit(&self, _: &str, _: ChannelEvent) {}
        fn subscription(&self, _: &str, _: &str, channel: &str, subscribed: bool) {
            self.0.lock().push((channel.to_owned(), subscribed));
        }
    }

    #[test]
    fn a_sink_hears_no_subscriptions_by_default_and_the_cluster_filter_passes_them_through() {
        Kept::default().subscription("app", "1.2", "room", true);
        let inner = Arc::new(Subscriptions::default());
        let filtered = ClusterVerdictsFiltered(inner.clone());
        filtered.subscription("app", "1.2", "room", true);
        filtered.subscription("app", "1.2", "room", false);
        assert_eq!(*inner.0.lock(), [("room".to_owned(), true), ("room".to_owned(), false)]);
        assert!(!filtered.wants("app", EventKind::Occupied) && filtered.wants("app", EventKind::ClientEvent));
    }

    #[test]
    fn every_kind_parses_back_from_its_name_and_nothing_else_parses() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.name()), Some(kind));
        }
        assert_eq!(EventKind::parse("joined"), None);
        assert_eq!(EventKind::parse("Channel_Occupied"), None);
    }

    #[test]
    fn kind_set_holds_exactly_what_was_inserted_in_list_order() {
        let mut set = EventKinds::NONE;
        assert!(set.is_empty());
        set.insert(EventKind::SubscriptionCount);
        set.insert(EventKind::MemberAdded);
        assert!(set.contains(EventKind::MemberAdded) && !set.contains(EventKind::MemberRemoved));
        assert_eq!(set.names().collect::<Vec<_>>(), ["member_added", "subscription_count"]);
        assert_eq!(set, [EventKind::MemberAdded, EventKind::SubscriptionCount].into_iter().collect());
        assert!(set.intersects(CLUSTER_VERDICTS) && !EventKinds::of(&[EventKind::CacheMiss]).intersects(set));
        assert_eq!(format!("{set:?}"), r#"{"member_added", "subscription_count"}"#);
    }
}
