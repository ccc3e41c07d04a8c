//! One connection's protocol state machine, independent of the socket.
//!
//! The connection task (in the `herald` binary) feeds every received text frame to
//! [`Session::handle_text`]; everything the session wants to send goes into the connection's
//! outbox, so replies and broadcasts stay in one ordered stream. The session is owned by that
//! one task, so its own state needs no locks. Dropping the session is the disconnect: it
//! unsubscribes from every channel (presence removals included) and unregisters the connection.
//!
//! One file per command, like mini-redis's `cmd/`: `subscribe.rs`, `client_event.rs`,
//! `signin.rs`.

mod client_event;
mod signin;
mod subscribe;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use herald_protocol::codes::ErrorCode;
use herald_protocol::inbound::{parse_client_message, ClientMessage};
use herald_protocol::outbound;

use crate::adapter::LocalChange;
use crate::app::App;
use crate::connection::Connection;
use crate::hub::Hub;
use crate::namespace::Namespace;

pub use signin::{PendingSignin, SignedInUser};
pub use subscribe::PendingSubscribe;

/// Work a frame left to finish once the cluster is ready (see [`Session::handle_text`]).
#[derive(Debug)]
pub enum Pending {
    /// A checked `pusher:subscribe` that joins once the channel is prepared.
    Subscribe(PendingSubscribe),
    /// A verified `pusher:signin` that completes once the user's channel is prepared.
    Signin(PendingSignin),
}

impl Pending {
    /// The app and channel the caller must `prepare` with the adapter first.
    pub fn channel(&self) -> &str {
        match self {
            Pending::Subscribe(p) => &p.channel,
            Pending::Signin(p) => &p.channel,
        }
    }
}

/// Fixed one-second window counting client events (PROTOCOL.md 7.1 rule 5).
#[derive(Debug)]
struct RateWindow {
    started: Instant,
    count: u32,
}

/// The protocol state of one connection: its app, subscriptions, client-event rate window and
/// signed-in user. Created by [`Hub::connect`], owned by the connection's task.
pub struct Session {
    hub: Arc<Hub>,
    app: Arc<App>,
    ns: Arc<Namespace>,
    conn: Arc<Connection>,
    /// Channels this connection is subscribed to (name → kind is re-derived when needed).
    subscriptions: HashMap<Arc<str>, ()>,
    rate: RateWindow,
    user: Option<SignedInUser>,
    /// Signed in, or subscribed to a private/presence channel (authorized connections, 8.7).
    authorized: bool,
    /// The hub's apps generation when `app` was last read (see [`Session::refresh_app`]).
    apps_generation: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("socket_id", &self.conn.socket_id_str).finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(hub: Arc<Hub>, app: Arc<App>, ns: Arc<Namespace>, conn: Arc<Connection>) -> Self {
        Session {
            app,
            ns,
            conn,
            subscriptions: HashMap::new(),
            rate: RateWindow { started: Instant::now(), count: 0 },
            user: None,
            authorized: false,
            apps_generation: hub.apps_generation(),
            hub,
        }
    }

    /// Re-reads the app from the store when its view changed since the last frame, so a rotated
    /// secret or a changed limit applies to this connection's next frame. An app no longer in
    /// the store keeps its last value: the hub closes its connections.
    fn refresh_app(&mut self) {
        let generation = self.hub.apps_generation();
        if generation != self.apps_generation {
            self.apps_generation = generation;
            if let Some(app) = self.hub.apps().by_id(&self.app.id) {
                self.app = app;
            }
        }
    }

    /// The shared handle of the connection (socket id, outbox).
    pub fn connection(&self) -> &Arc<Connection> {
        &self.conn
    }

    /// The app the connection belongs to.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Whether the connection has signed in or joined a private/presence channel.
    pub fn is_authorized(&self) -> bool {
        self.authorized
    }

    /// Channels this connection is subscribed to.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions.len()
    }

    /// Handles one text frame from the client. Returns work the caller must finish after an
    /// `.await` (cluster mode: a subscription waits for [`Adapter::prepare`] and then calls
    /// [`Session::finish`]); `None` when the frame was handled completely.
    ///
    /// [`Adapter::prepare`]: crate::adapter::Adapter::prepare
    pub fn handle_text(&mut self, text: &str) -> Option<Pending> {
        self.refresh_app();
        let msg = match parse_client_message(text) {
            Ok(msg) => msg,
            Err(e) => {
                self.send_error(None, &e.to_string());
                return None;
            }
        };
        match msg {
            ClientMessage::Ping => self.send(outbound::pong()),
            ClientMessage::Pong | ClientMessage::UnknownPusherEvent(_) => {}
            ClientMessage::Subscribe { channel, auth, channel_data } => {
                return self.subscribe(&channel, auth.as_deref(), channel_data.as_deref());
            }
            ClientMessage::Unsubscribe { channel } => self.unsubscribe(&channel),
            ClientMessage::Signin { auth, user_data } => return self.signin(&auth, &user_data),
            ClientMessage::ClientEvent { event, channel, data } => self.client_event(&event, &channel, &data),
        }
        None
    }

    /// Completes work returned by [`Session::handle_text`].
    pub fn finish(&mut self, pending: Pending) {
        self.refresh_app();
        match pending {
            Pending::Subscribe(p) => self.finish_subscribe(p),
            Pending::Signin(p) => self.finish_signin(p),
        }
    }

    /// Reports a local change to the cluster (no-op on a single node).
    fn tell(&self, change: LocalChange) {
        if self.hub.adapter().is_clustered() {
            self.hub.adapter().local_change(&self.app.id, change);
        }
    }

    fn send(&self, frame: Bytes) {
        self.conn.send(frame, &self.hub.metrics);
    }

    /// Queues a `pusher:error` (connection stays open).
    fn send_error(&self, code: Option<ErrorCode>, message: &str) {
        self.hub.metrics.error(code);
        self.send(outbound::error(code, message));
    }

    fn unsubscribe(&mut self, channel: &str) {
        if self.subscriptions.remove(channel).is_some() {
            let count = self.hub.count_policy(&self.app);
            // Told first, so the leave comes before what it causes (vacated, member removed).
            self.hub.subscription_changed(&self.app.id, &self.conn.socket_id_str, channel, false);
            self.ns.unsubscribe(&self.conn, channel, count, &self.hub.metrics);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let count = self.hub.count_policy(&self.app);
        for (channel, ()) in self.subscriptions.drain() {
            self.hub.subscription_changed(&self.app.id, &self.conn.socket_id_str, &channel, false);
            self.ns.unsubscribe(&self.conn, &channel, count, &self.hub.metrics);
        }
        if let Some(user) = self.user.take() {
            let watch = self.app.limits.enable_watchlist_events;
            if self.ns.users.sign_out(self.conn.socket_id.seq, &user.id, watch, &self.hub.metrics) {
                self.tell(LocalChange::UserOffline { user_id: user.id });
            }
        }
        self.ns.remove_connection(self.conn.socket_id.seq);
        self.hub.disconnected();
    }
}
