//! The console: a live debug log and an overview of the apps in the browser, served by herald
//! itself under `/console` (docs/OPERATIONS.md, "Console"), off unless `[console]` enables it.
//!
//! - [`tap`]: what happened to a watched app (connections, subscriptions, channel and presence
//!   events, API messages, client events, webhooks), handed to the consoles watching it. It
//!   costs one atomic load per recording point while nobody watches.
//! - `auth.rs`: HTTP Basic or the login form, the sessions, CSRF and the login rate limit.
//! - `routes.rs`: the router, the pages (one HTML shell) and the embedded assets.
//! - `api.rs`: the JSON API the pages read (apps, channels, members, event creator, webhooks,
//!   history).
//! - `history.rs`: the sampler keeping each app's last hour of connections and messages.
//! - `stream.rs`: the live log as server-sent events.
//!
//! Everything the console holds is bounded: [`MAX_SESSIONS`] sessions, [`MAX_STREAMS`] live
//! logs per node, request bodies of [`MAX_BODY`] bytes, [`history::MAX_APPS`] charted apps of
//! [`history::SAMPLES`] samples each, [`auth::LOGIN_FAILURES`] failed logins per minute and
//! address.

mod api;
mod auth;
mod history;
mod routes;
mod stream;
pub(crate) mod tap;

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::console::ConsoleConfig;

pub(crate) use history::run as run_history;
pub(crate) use routes::router;

/// Sessions kept at once; the oldest is evicted beyond it.
pub(crate) const MAX_SESSIONS: usize = 64;
/// Live-log streams (server-sent events) open at once on a node; beyond it 503.
pub(crate) const MAX_STREAMS: usize = 16;
/// The largest request body the console reads (login form, event creator, re-send).
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// The console of one node (`ServerState::console`, set when `[console]` enables it).
pub(crate) struct Console {
    pub(crate) config: ConsoleConfig,
    /// Logged-in browsers (`auth.rs`).
    pub(crate) sessions: auth::Sessions,
    /// Failed logins per client address (`auth.rs`).
    pub(crate) logins: auth::LoginLimiter,
    /// The key the CSRF token of Basic-authenticated requests is derived with; random per
    /// process, so tokens die with it.
    pub(crate) csrf_key: [u8; 32],
    /// Permits of the open live-log streams ([`MAX_STREAMS`]).
    pub(crate) streams: Arc<Semaphore>,
    /// Each app's last hour (`history.rs`).
    pub(crate) history: history::History,
    /// Cancelled at shutdown: open streams end, so the HTTP connections can finish.
    pub(crate) closing: CancellationToken,
    /// Whether the session cookie is marked `Secure` (the main listener serves TLS).
    pub(crate) secure_cookie: bool,
}

impl Console {
    pub(crate) fn new(config: ConsoleConfig, secure_cookie: bool) -> Console {
        Console {
            config,
            sessions: auth::Sessions::default(),
            logins: auth::LoginLimiter::default(),
            csrf_key: rand::random(),
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
            history: history::History::default(),
            closing: CancellationToken::new(),
            secure_cookie,
        }
    }
}
