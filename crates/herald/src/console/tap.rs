//! The debug tap: the entries of the live debug console, per app.
//!
//! Recording points (connection task, session, publish, webhooks) call [`Tap::record`] with a
//! closure; the entry is built only when some console watches that app, so an unwatched app
//! pays one atomic load (no console anywhere) or one lock-free map load (a console on another
//! app). Each watched app has a bounded broadcast ring: sending never waits, and a console that
//! falls more than [`RING`] entries behind is dropped ([`Dropped`]) rather than slowing anyone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::broadcast;

/// Entries a console may fall behind before it is dropped.
pub(crate) const RING: usize = 1024;

/// What an entry records. Its `snake_case` name is the `kind` the console shows and filters by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

/// One line of the debug log. Fields that do not apply to the kind are left out of the JSON.
#[derive(Debug, Clone, Serialize)]
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
}

/// One watched app: its ring and how many consoles hold a [`Watch`] on it.
struct Watched {
    ring: broadcast::Sender<Arc<Entry>>,
    watchers: usize,
}

/// The tap of one node. Shared by every recording point (`ServerState::console_tap`).
pub(crate) struct Tap {
    /// Number of watched apps: the fast path's one load when no console is open.
    watched_count: AtomicUsize,
    /// Watched apps → their ring. Read lock-free on every recording point; replaced (copy on
    /// write) only when a console opens or closes, under `edit`.
    watched: ArcSwap<HashMap<Arc<str>, broadcast::Sender<Arc<Entry>>>>,
    /// Serializes opening and closing watches (the watcher counts and the copy-on-write of
    /// `watched`). Never held on a recording path, never held across an await.
    edit: Mutex<HashMap<Arc<str>, Watched>>,
}

impl Default for Tap {
    fn default() -> Self {
        Tap {
            watched_count: AtomicUsize::new(0),
            watched: ArcSwap::from_pointee(HashMap::new()),
            edit: Mutex::new(HashMap::new()),
        }
    }
}

impl Tap {
    /// Whether some console watches `app_id`.
    pub(crate) fn watching(&self, app_id: &str) -> bool {
        self.watched_count.load(Ordering::Relaxed) != 0 && self.watched.load().contains_key(app_id)
    }

    /// Records the entry `make` builds, if some console watches `app_id`; never waits.
    pub(crate) fn record(&self, app_id: &str, make: impl FnOnce() -> Entry) {
        if self.watched_count.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(ring) = self.watched.load().get(app_id) {
            // No receiver left (a watch closing right now): nothing to do.
            let _ = ring.send(Arc::new(make()));
        }
    }

    /// Opens a watch on `app_id`: every entry recorded from now on, until it is dropped.
    pub(crate) fn watch(self: &Arc<Self>, app_id: &str) -> Watch {
        let mut edit = self.edit.lock();
        let watched =
            edit.entry(Arc::from(app_id)).or_insert_with(|| Watched { ring: broadcast::channel(RING).0, watchers: 0 });
        watched.watchers += 1;
        let rx = watched.ring.subscribe();
        self.publish(&edit);
        Watch { tap: self.clone(), app_id: Arc::from(app_id), rx }
    }

    /// Replaces the lock-free view with `edit`'s apps. Called with `edit` held.
    fn publish(&self, edit: &HashMap<Arc<str>, Watched>) {
        let view: HashMap<_, _> = edit.iter().map(|(app, w)| (app.clone(), w.ring.clone())).collect();
        self.watched_count.store(view.len(), Ordering::Relaxed);
        self.watched.store(Arc::new(view));
    }

    fn unwatch(&self, app_id: &str) {
        let mut edit = self.edit.lock();
        let Some(watched) = edit.get_mut(app_id) else { return };
        watched.watchers -= 1;
        if watched.watchers == 0 {
            edit.remove(app_id);
            self.publish(&edit);
        }
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
