//! Apps (tenants) and where they come from.
//!
//! An [`App`] is immutable once loaded: its limits and feature flags are read on every
//! message, so they live behind an `Arc` and are never locked. Where apps come from is the
//! [`AppStore`] trait: a synchronous read of the store's current view (the embedded default is
//! [`StaticAppStore`]; the server's run-time directory, refreshed from the config file or a SQL
//! table, implements it too). When the view changes, [`AppChange`]s tell the hub, and sessions
//! re-read their app before their next frame.

use std::collections::HashMap;
use std::sync::Arc;

/// Per-app limits and feature flags. Names and defaults follow PROTOCOL.md section 13.1.
#[derive(Debug, Clone, PartialEq)]
pub struct AppLimits {
    /// False: new connections are closed with 4003 and HTTP API requests are refused.
    pub enabled: bool,
    /// Whether clients may send `client-` events on private and presence channels.
    pub enable_client_messages: bool,
    /// Connections of this app per node, over which a new one is closed with 4004. `None` =
    /// unlimited.
    pub max_connections: Option<u64>,
    /// Distinct users a presence channel holds before further subscriptions are refused.
    pub max_presence_members_per_channel: usize,
    /// Largest serialized presence `user_info`, in KB ([`AppLimits::max_member_bytes`]).
    pub max_presence_member_size_in_kb: usize,
    /// Largest event `data`, in KB ([`AppLimits::max_payload_bytes`]).
    pub max_event_payload_in_kb: usize,
    /// Channels one HTTP publish may name.
    pub max_event_channels_at_once: usize,
    /// Events one `batch_events` request may carry.
    pub max_event_batch_size: usize,
    /// Longest channel name, in bytes.
    pub max_channel_name_length: usize,
    /// Longest event name, in bytes.
    pub max_event_name_length: usize,
    /// Longest user id (presence `channel_data` and sign-in), in bytes.
    pub max_user_id_length: usize,
    /// Client events one connection may send per second; more are refused with 4301.
    pub max_client_events_per_second: u32,
    /// "user authentication required": a connection must sign in (or subscribe to a private or
    /// presence channel) within the server's `authorized_connection_timeout`, else 4009.
    pub require_authorized_connections: bool,
    /// Whether signed-in users receive `online`/`offline` events for their watchlist.
    pub enable_watchlist_events: bool,
    /// Watchlist entries kept at sign-in; a longer list is truncated and answered with 4302.
    pub max_watchlist_size: usize,
    /// Channels one connection may be subscribed to at once; a further subscribe is refused
    /// (the connection stays open), so one socket cannot make the node hold unbounded state.
    pub max_subscriptions_per_connection: usize,
    /// Occupied channels (with a subscriber on this node) the app may have at once; a
    /// subscribe that would occupy one more is refused. `None`: no cap.
    pub max_channels: Option<u64>,
    /// Whether subscribers receive `pusher_internal:subscription_count` (PROTOCOL.md 9.2).
    pub enable_subscription_count: bool,
    /// Whether a refused subscription is also reported as a channel-scoped
    /// `pusher:subscription_error` (PROTOCOL.md 5.9).
    pub emit_subscription_error: bool,
    /// Whether connections that did not arrive over TLS are closed with 4000.
    pub force_tls: bool,
    /// Messages (API requests + deliveries + webhook requests) the app may use per UTC day;
    /// at the limit HTTP publishes get 403 and client events `pusher:error`. `None`: unlimited.
    pub max_messages_per_day: Option<u64>,
    /// HTTP API requests per second (token bucket, burst of the same size), per node; over it
    /// 429 with `Retry-After`. `None`: unlimited.
    pub max_api_requests_per_second: Option<u64>,
}

impl Default for AppLimits {
    fn default() -> Self {
        AppLimits {
            enabled: true,
            enable_client_messages: false,
            max_connections: None,
            max_presence_members_per_channel: 100,
            max_presence_member_size_in_kb: 1,
            max_event_payload_in_kb: 10,
            max_event_channels_at_once: 100,
            max_event_batch_size: 10,
            max_channel_name_length: 200,
            max_event_name_length: 200,
            max_user_id_length: 128,
            max_client_events_per_second: 10,
            require_authorized_connections: false,
            enable_watchlist_events: false,
            max_watchlist_size: 100,
            max_subscriptions_per_connection: 1000,
            max_channels: None,
            enable_subscription_count: false,
            emit_subscription_error: false,
            force_tls: false,
            max_messages_per_day: None,
            max_api_requests_per_second: None,
        }
    }
}

impl AppLimits {
    /// Largest accepted event `data`, in bytes (10 KB = 10 240 bytes, as the SDKs check).
    pub fn max_payload_bytes(&self) -> usize {
        self.max_event_payload_in_kb * 1024
    }
    /// Largest accepted serialized presence `user_info`, in bytes.
    pub fn max_member_bytes(&self) -> usize {
        self.max_presence_member_size_in_kb * 1024
    }
}

/// One tenant: credentials plus limits.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    /// The app id in HTTP API paths (`/apps/{id}/…`) and webhooks.
    pub id: String,
    /// The public key clients connect with (`/app/{key}`) and that signs auth tokens.
    pub key: String,
    /// The shared secret behind every HMAC signature of this app.
    pub secret: String,
    /// Its limits and feature flags.
    pub limits: AppLimits,
}

impl App {
    /// The secret for a key presented in an `auth` token, if the key is this app's.
    pub fn secret_for_key(&self, key: &str) -> Option<&str> {
        (key == self.key).then_some(self.secret.as_str())
    }
}

/// One app's change in the store's view, as [`crate::hub::Hub::apps_changed`] applies it.
#[derive(Debug, Clone, PartialEq)]
pub enum AppChange {
    /// Added or changed (credentials, limits, flags); a disabled app is one whose
    /// `limits.enabled` is false.
    Updated(Arc<App>),
    /// No longer in the store (by id).
    Removed(String),
}

/// Where apps are looked up. Implementations must be cheap to call on every connection and
/// every HTTP request (the static store is two hash lookups).
pub trait AppStore: Send + Sync + 'static {
    /// The app a WebSocket connection names by its key.
    fn by_key(&self, key: &str) -> Option<Arc<App>>;
    /// The app an HTTP API path names by its id.
    fn by_id(&self, id: &str) -> Option<Arc<App>>;
    /// Every app id (cluster bookkeeping at start-up). Stores that cannot list return none.
    fn ids(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Apps fixed at start-up (config file, env, flags). Read-only after construction, so no lock.
#[derive(Debug, Default)]
pub struct StaticAppStore {
    by_key: HashMap<String, Arc<App>>,
    by_id: HashMap<String, Arc<App>>,
}

impl StaticAppStore {
    /// Builds the store. Duplicate ids or keys are a configuration error, reported by the
    /// config loader before this is called; here the last one wins.
    pub fn new(apps: impl IntoIterator<Item = App>) -> Self {
        let mut store = StaticAppStore::default();
        for app in apps {
            let app = Arc::new(app);
            store.by_key.insert(app.key.clone(), app.clone());
            store.by_id.insert(app.id.clone(), app);
        }
        store
    }
}

impl AppStore for StaticAppStore {
    fn by_key(&self, key: &str) -> Option<Arc<App>> {
        self.by_key.get(key).cloned()
    }
    fn by_id(&self, id: &str) -> Option<Arc<App>> {
        self.by_id.get(id).cloned()
    }
    fn ids(&self) -> Vec<String> {
        self.by_id.keys().cloned().collect()
    }
}
