//! The debug tap: the entries of the live debug console, per app.
//!
//! Recording points (connection task, session, publish, webhooks) call [`Tap::record`] with a
//! closure; the entry is built only when some console watches that app, so an unwatched app
//! pays one atomic load (no console anywhere) or one lock-free map load (a console on another
//! app). Each watched app has a bounded broadcast ring: sending never waits, and a console that
//! falls more than [`RING`] entries behind is dropped ([`Dropped`]) rather than slowing anyone.
//!
//! Sources: the connection task (opened, closed), [`TapSink`] wrapped around the webhooks'
//! event sink (subscriptions, occupancy, presence, client events: in a cluster the occupancy
//! and presence verdicts come from the Redis adapter, one node per verdict), the API's publish
//! (`http::events::publish`), the webhook workers (delivered, failed, dead-lettered).
//!
//! Cluster: an app watched on another node (told by `cluster/tap.rs` through
//! [`Tap::set_remote`]) counts as watched here too, and its entries go to the [`Relay`], which
//! publishes them for the watching node; entries that arrive from other nodes are handed to
//! this node's consoles only ([`Tap::deliver`]). An app watched nowhere costs nothing extra.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use herald_core::events::{ChannelEvent, EventKind, EventKinds, EventSink};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, Notify};

/// Entries a console may fall behind before it is dropped.
pub(crate) const RING: usize = 1024;

/// What an entry records. Its `snake_case` name is the `kind` the console shows and filters by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum EntryKind {
    /// A WebSocket connection was established (`socket_id`).
    ConnectionOpened,
    /// A connection closed (`socket_id`, `code` when a close code was sent or received).
    ConnectionClosed,
    /// A connection subscribed to `channel`.
    Subscribed,
    /// A connection unsubscribed from `channel` (or left it by disconnecting).
    Unsubscribed,
    /// `channel` got its first subscriber.
    ChannelOccupied,
    /// `channel` lost its last subscriber.
    ChannelVacated,
    /// `user_id` joined presence `channel`.
    MemberAdded,
    /// `user_id` left presence `channel`.
    MemberRemoved,
    /// An event published through the HTTP API (or the console's event creator): `channel`,
    /// `event`, `data`.
    ApiMessage,
    /// A client event: `socket_id`, `channel`, `event`, `data`.
    ClientEvent,
    /// A webhook request was answered 2xx (`detail`: target and events).
    WebhookDelivered,
    /// A webhook attempt failed and will be retried (`detail`: target and why).
    WebhookFailed,
    /// Webhook deliveries were dead-lettered (`detail`: target and how many).
    WebhookDeadLetter,
}

/// One line of the debug log. Fields that do not apply to the kind are left out of the JSON
/// (the same JSON carries it between the nodes of a cluster).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// Milliseconds since the Unix epoch, when it was recorded.
    pub ts: u64,
    pub kind: EntryKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_id: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Entry {
    /// An entry of `kind` stamped now, every other field empty.
    pub(crate) fn new(kind: EntryKind) -> Entry {
        let ts = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Entry {
            ts,
            kind,
            socket_id: None,
            channel: None,
            event: None,
            data: None,
            user_id: None,
            code: None,
            detail: None,
        }
    }
    pub(crate) fn socket(mut self, socket_id: impl Into<Arc<str>>) -> Entry {
        self.socket_id = Some(socket_id.into());
        self
    }
    pub(crate) fn channel(mut self, channel: impl Into<Arc<str>>) -> Entry {
        self.channel = Some(channel.into());
        self
    }
    pub(crate) fn event(mut self, event: impl Into<Arc<str>>) -> Entry {
        self.event = Some(event.into());
        self
    }
    pub(crate) fn data(mut self, data: impl Into<Arc<str>>) -> Entry {
        self.data = Some(data.into());
        self
    }
    pub(crate) fn user(mut self, user_id: impl Into<Arc<str>>) -> Entry {
        self.user_id = Some(user_id.into());
        self
    }
    pub(crate) fn code(mut self, code: u16) -> Entry {
        self.code = Some(code);
        self
    }
    pub(crate) fn detail(mut self, detail: impl Into<String>) -> Entry {
        self.detail = Some(detail.into());
        self
    }

    /// The entry of a channel event the console shows ([`SHOWN`]); `None` for the others.
    pub(crate) fn of_event(event: &ChannelEvent) -> Option<Entry> {
        Some(match event {
            ChannelEvent::Occupied { channel } => Entry::new(EntryKind::ChannelOccupied).channel(channel.clone()),
            ChannelEvent::Vacated { channel } => Entry::new(EntryKind::ChannelVacated).channel(channel.clone()),
            ChannelEvent::MemberAdded { channel, user_id } => {
                Entry::new(EntryKind::MemberAdded).channel(channel.clone()).user(user_id.clone())
            }
            ChannelEvent::MemberRemoved { channel, user_id } => {
                Entry::new(EntryKind::MemberRemoved).channel(channel.clone()).user(user_id.clone())
            }
            ChannelEvent::ClientEvent { channel, event, data, socket_id, user_id } => {
                let mut entry = Entry::new(EntryKind::ClientEvent)
                    .channel(channel.clone())
                    .event(event.clone())
                    .data(data.clone())
                    .socket(socket_id.clone());
                entry.user_id = user_id.clone();
                entry
            }
            ChannelEvent::CacheMiss { .. } | ChannelEvent::SubscriptionCount { .. } => return None,
        })
    }
}

/// The channel events the console shows (cache misses and subscription counts it does not).
pub(crate) const SHOWN: EventKinds = EventKinds::of(&[
    EventKind::Occupied,
    EventKind::Vacated,
    EventKind::MemberAdded,
    EventKind::MemberRemoved,
    EventKind::ClientEvent,
]);

/// Carries entries of apps watched on other nodes to them (the Redis adapter's
/// `cluster/tap.rs`). Called on recording paths: queues and returns.
pub(crate) trait Relay: Send + Sync + 'static {
    fn forward(&self, app_id: &str, entry: Arc<Entry>);
}

/// One watched app: its ring and how many consoles hold a [`Watch`] on it.
struct Watched {
    ring: broadcast::Sender<Arc<Entry>>,
    watchers: usize,
}

/// Where the entries of one watched app go.
#[derive(Clone)]
struct Route {
    /// The ring of this node's consoles; `None` when only other nodes watch the app.
    ring: Option<broadcast::Sender<Arc<Entry>>>,
    /// Some other node watches the app: entries also go to the [`Relay`].
    remote: bool,
}

/// What `Tap::edit` guards.
#[derive(Default)]
struct Edit {
    /// Apps watched by consoles on this node.
    local: HashMap<Arc<str>, Watched>,
    /// Apps watched on other nodes (cluster).
    remote: HashSet<Arc<str>>,
}

/// The tap of one node. Shared by every recording point (`ServerState::console_tap`).
pub(crate) struct Tap {
    /// Number of watched apps (here or, in a cluster, elsewhere): the fast path's one load
    /// when no console is open anywhere.
    watched_count: AtomicUsize,
    /// Watched apps → where their entries go. Read lock-free on every recording point;
    /// replaced (copy on write) only when a console opens or closes here or elsewhere, under
    /// `edit`.
    watched: ArcSwap<HashMap<Arc<str>, Route>>,
    /// Serializes changes of the watched apps (the watcher counts, the remote set and the
    /// copy-on-write of `watched`). Never held on a recording path, never across an await.
    edit: Mutex<Edit>,
    /// Where entries of apps watched elsewhere go; set once by the Redis adapter, read
    /// without a lock. Unset on a single node (nothing is ever watched elsewhere).
    relay: OnceLock<Arc<dyn Relay>>,
    /// Woken when this node's consoles start or stop watching an app, so the cluster relay
    /// tells the other nodes at once instead of at its next tick.
    changed: Notify,
}

impl Default for Tap {
    fn default() -> Self {
        Tap {
            watched_count: AtomicUsize::new(0),
            watched: ArcSwap::from_pointee(HashMap::new()),
            edit: Mutex::new(Edit::default()),
            relay: OnceLock::new(),
            changed: Notify::new(),
        }
    }
}

impl Tap {
    /// Whether some console watches `app_id`.
    pub(crate) fn watching(&self, app_id: &str) -> bool {
        self.watched_count.load(Ordering::Relaxed) != 0 && self.watched.load().contains_key(app_id)
    }

    /// Records the entry `make` builds, if some console (here or elsewhere in the cluster)
    /// watches `app_id`; never waits.
    pub(crate) fn record(&self, app_id: &str, make: impl FnOnce() -> Entry) {
        if self.watched_count.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(route) = self.watched.load().get(app_id) {
            let entry = Arc::new(make());
            if route.remote {
                if let Some(relay) = self.relay.get() {
                    relay.forward(app_id, entry.clone());
                }
            }
            if let Some(ring) = &route.ring {
                // No receiver left (a watch closing right now): nothing to do.
                let _ = ring.send(entry);
            }
        }
    }

    /// Hands an entry recorded on another node to this node's consoles of `app_id` (never to
    /// the relay: it came from there).
    pub(crate) fn deliver(&self, app_id: &str, entry: Entry) {
        if let Some(ring) = self.watched.load().get(app_id).and_then(|r| r.ring.as_ref()) {
            let _ = ring.send(Arc::new(entry));
        }
    }

    /// Opens a watch on `app_id`: every entry recorded from now on, until it is dropped.
    pub(crate) fn watch(self: &Arc<Self>, app_id: &str) -> Watch {
        let mut edit = self.edit.lock();
        let watched = edit
            .local
            .entry(Arc::from(app_id))
            .or_insert_with(|| Watched { ring: broadcast::channel(RING).0, watchers: 0 });
        watched.watchers += 1;
        let first = watched.watchers == 1;
        let rx = watched.ring.subscribe();
        self.publish(&edit);
        drop(edit);
        if first {
            self.changed.notify_one();
        }
        Watch { tap: self.clone(), app_id: Arc::from(app_id), rx }
    }

    /// Where entries of apps watched elsewhere go (the Redis adapter; set once).
    pub(crate) fn use_relay(&self, relay: Arc<dyn Relay>) {
        let _ = self.relay.set(relay);
    }

    /// The apps this node's consoles watch.
    pub(crate) fn local_apps(&self) -> Vec<Arc<str>> {
        self.edit.lock().local.keys().cloned().collect()
    }

    /// Replaces the set of apps watched on other nodes (the cluster relay, after each read).
    pub(crate) fn set_remote(&self, apps: HashSet<Arc<str>>) {
        let mut edit = self.edit.lock();
        if edit.remote != apps {
            edit.remote = apps;
            self.publish(&edit);
        }
    }

    /// Resolves when this node's consoles started or stopped watching an app since the last
    /// call (one waiter: the cluster relay).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Replaces the lock-free view with `edit`'s apps. Called with `edit` held.
    fn publish(&self, edit: &Edit) {
        let mut view: HashMap<_, _> = edit
            .local
            .iter()
            .map(|(app, w)| (app.clone(), Route { ring: Some(w.ring.clone()), remote: false }))
            .collect();
        for app in &edit.remote {
            view.entry(app.clone()).or_insert(Route { ring: None, remote: false }).remote = true;
        }
        self.watched_count.store(view.len(), Ordering::Relaxed);
        self.watched.store(Arc::new(view));
    }

    fn unwatch(&self, app_id: &str) {
        let mut edit = self.edit.lock();
        let Some(watched) = edit.local.get_mut(app_id) else { return };
        watched.watchers -= 1;
        if watched.watchers == 0 {
            edit.local.remove(app_id);
            self.publish(&edit);
            drop(edit);
            self.changed.notify_one();
        }
    }
}

/// The event sink the hub and the Redis adapter get: the webhooks' sink, plus the console's
/// share (the kinds in [`SHOWN`] and every subscription change) while some console watches
/// the app. Unwatched, it adds one atomic load to `wants`.
pub(crate) struct TapSink {
    pub webhooks: Arc<dyn EventSink>,
    pub tap: Arc<Tap>,
}

impl EventSink for TapSink {
    fn wants(&self, app_id: &str, kind: EventKind) -> bool {
        self.webhooks.wants(app_id, kind) || (SHOWN.contains(kind) && self.tap.watching(app_id))
    }

    fn emit(&self, app_id: &str, event: ChannelEvent) {
        if SHOWN.contains(event.kind()) && self.tap.watching(app_id) {
            if let Some(entry) = Entry::of_event(&event) {
                self.tap.record(app_id, || entry);
            }
        }
        if self.webhooks.wants(app_id, event.kind()) {
            self.webhooks.emit(app_id, event);
        }
    }

    fn subscription(&self, app_id: &str, socket_id: &str, channel: &str, subscribed: bool) {
        self.tap.record(app_id, || {
            let kind = if subscribed { EntryKind::Subscribed } else { EntryKind::Unsubscribed };
            Entry::new(kind).socket(socket_id).channel(channel)
        });
    }
}

/// The console fell more than [`RING`] entries behind and was dropped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Dropped;

/// A console's subscription to one app's entries; closes its share of the watch when dropped.
pub(crate) struct Watch {
    tap: Arc<Tap>,
    app_id: Arc<str>,
    rx: broadcast::Receiver<Arc<Entry>>,
}

impl Watch {
    /// The next entry; [`Dropped`] once this console has fallen too far behind.
    pub(crate) async fn recv(&mut self) -> Result<Arc<Entry>, Dropped> {
        self.rx.recv().await.map_err(|_| Dropped)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.tap.unwatch(&self.app_id);
    }
}

#[cfg(test)]
#[path = "tap_tests.rs"]
mod server_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unwatched_apps_never_build_entries_and_watched_apps_get_theirs() {
        let tap = Arc::new(Tap::default());
        tap.record("a", || panic!("built with no console open"));
        let mut watch = tap.watch("a");
        tap.record("b", || panic!("built for an app nobody watches"));
        tap.record("a", || Entry::new(EntryKind::Subscribed).channel("room"));
        let entry = watch.recv().await.unwrap();
        assert_eq!((entry.kind, entry.channel.as_deref()), (EntryKind::Subscribed, Some("room")));
        drop(watch);
        assert!(!tap.watching("a"));
        tap.record("a", || panic!("built after the last console closed"));
    }

    #[tokio::test]
    async fn a_console_that_falls_behind_is_dropped_and_the_sender_never_waits() {
        let tap = Arc::new(Tap::default());
        let mut slow = tap.watch("a");
        let mut fast = tap.watch("a");
        for i in 0..RING + 10 {
            tap.record("a", || Entry::new(EntryKind::ApiMessage).event(format!("e{i}")));
            fast.recv().await.unwrap();
        }
        assert_eq!(slow.recv().await.unwrap_err(), Dropped);
        assert!(tap.watching("a"), "the other console still watches");
    }

    /// Keeps what it is asked to forward.
    #[derive(Default)]
    struct Kept(Mutex<Vec<(String, EntryKind)>>);

    impl Relay for Kept {
        fn forward(&self, app_id: &str, entry: Arc<Entry>) {
            self.0.lock().push((app_id.to_owned(), entry.kind));
        }
    }

    #[tokio::test]
    async fn entries_of_apps_watched_elsewhere_go_to_the_relay_and_entries_from_elsewhere_only_to_local_consoles() {
        let tap = Arc::new(Tap::default());
        let relay = Arc::new(Kept::default());
        tap.use_relay(relay.clone());
        tap.set_remote([Arc::from("far")].into_iter().collect());
        assert!(tap.watching("far"));
        tap.record("far", || Entry::new(EntryKind::Subscribed));
        tap.record("near", || panic!("built for an app nobody watches anywhere"));
        let mut watch = tap.watch("near");
        tap.deliver("near", Entry::new(EntryKind::ClientEvent));
        tap.deliver("far", Entry::new(EntryKind::ClientEvent));
        assert_eq!(watch.recv().await.unwrap().kind, EntryKind::ClientEvent);
        assert_eq!(*relay.0.lock(), [("far".to_owned(), EntryKind::Subscribed)], "only recorded entries are relayed");
        tap.set_remote(HashSet::new());
        tap.record("far", || panic!("built after the other node stopped watching"));
    }

    /// A webhook sink that wants only `channel_vacated` and counts what it gets.
    #[derive(Default)]
    struct Hooks(Mutex<Vec<EventKind>>);

    impl EventSink for Hooks {
        fn wants(&self, _: &str, kind: EventKind) -> bool {
            kind == EventKind::Vacated
        }
        fn emit(&self, _: &str, event: ChannelEvent) {
            self.0.lock().push(event.kind());
        }
    }

    #[tokio::test]
    async fn the_sink_adds_the_consoles_share_to_the_webhooks_only_while_the_app_is_watched() {
        let tap = Arc::new(Tap::default());
        let hooks = Arc::new(Hooks::default());
        let sink = TapSink { webhooks: hooks.clone(), tap: tap.clone() };
        assert!(!sink.wants("a", EventKind::ClientEvent) && sink.wants("a", EventKind::Vacated));
        sink.subscription("a", "1.2", "room", true);
        let mut watch = tap.watch("a");
        assert!(sink.wants("a", EventKind::ClientEvent) && !sink.wants("a", EventKind::CacheMiss));
        sink.subscription("a", "1.2", "room", false);
        sink.emit("a", ChannelEvent::Vacated { channel: "room".into() });
        sink.emit("a", ChannelEvent::CacheMiss { channel: "room".into() });
        let left = watch.recv().await.unwrap();
        assert_eq!((left.kind, left.socket_id.as_deref()), (EntryKind::Unsubscribed, Some("1.2")));
        assert_eq!(watch.recv().await.unwrap().kind, EntryKind::ChannelVacated);
        assert_eq!(*hooks.0.lock(), [EventKind::Vacated], "webhooks get only what they want");
    }

    #[test]
    fn entry_json_round_trips_between_nodes() {
        let entry = Entry::new(EntryKind::ClientEvent).channel("c").event("client-e").data("{}").user("u");
        let back: Entry = serde_json::from_str(&serde_json::to_string(&entry).unwrap()).unwrap();
        assert_eq!(back, entry);
    }

    #[test]
    fn entry_json_leaves_out_fields_that_do_not_apply() {
        let entry = Entry::new(EntryKind::ConnectionClosed).socket("1.2").code(4009);
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(json["kind"], "connection_closed");
        assert_eq!(json["socket_id"], "1.2");
        assert_eq!(json["code"], 4009);
        assert!(json.get("channel").is_none() && json["ts"].as_u64().unwrap() > 0);
    }
}
