//! Keeping the [`Directory`] in step with a SQL app store.
//!
//! The directory is what every connection and API request reads; nothing on the publish or
//! delivery path queries the database. [`StoreSync`] fills it:
//! - **refresh**: every `cache_ttl` the whole table is read (one query) and the directory's
//!   view replaced, so a row inserted, changed, disabled or deleted takes effect within
//!   `cache_ttl` on every node; the changes go to the hub and the webhooks like a reload's;
//! - **lookups of unknown keys and ids** (a new app's first connection or API request) query
//!   the store at once, at most [`MISS_LOOKUPS`] at a time, and remember what was not found for
//!   [`NEGATIVE_TTL`] (at most [`NEGATIVE_MAX`] entries), so a client spraying random keys
//!   costs at most a few queries a second;
//! - **outages**: a failed refresh keeps the view as it is (cached apps keep working past their
//!   TTL), unknown keys are refused (4001 / 404) and logged at most once per 10 s, `/ready`
//!   says `degraded: app store unreachable`, and the next refresh (every second while the
//!   store is down) recovers on its own;
//! - **bad rows**: a row that does not validate is left out of the view (the app is unusable,
//!   its open connections closed with 4003), logged once per distinct error naming the app and
//!   the key, while every other app keeps working.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_core::app::{App, AppStore};
use parking_lot::Mutex;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::directory::Replaced;
use super::row::{app_from_row, AppRow};
use super::sql::SqlStore;
use super::Directory;
use crate::log_limit::LogLimit;
use crate::webhooks::config::AppWebhooks;

/// Concurrent lookups of unknown keys or ids; more wait (the pool has 4 connections).
const MISS_LOOKUPS: usize = 4;
/// How long a key or id the store did not have is refused without asking again.
pub(crate) const NEGATIVE_TTL: Duration = Duration::from_secs(2);
/// Unknown keys and ids remembered at most (the oldest half is forgotten when full).
const NEGATIVE_MAX: usize = 10_000;
/// How often a store that failed is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// Whether to look up by key (connections) or by id (the HTTP API).
#[derive(Debug, Clone, Copy)]
pub(crate) enum By {
    Key,
    Id,
}

/// What `/ready` says about the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreHealth {
    /// The last query succeeded.
    Ok,
    /// The last query failed; the apps loaded before are served.
    Unreachable,
    /// No refresh has succeeded since start-up: the node serves no app yet.
    NotLoaded,
}

/// See the module doc.
pub(crate) struct StoreSync {
    store: SqlStore,
    ttl: Duration,
    /// Keys ("k:…") and ids ("i:…") not found, with when they may be asked again. A mutex: a
    /// lookup is rare (an unknown key), and the map is checked and pruned in one step; never
    /// held across an `.await`.
    negative: Mutex<HashMap<String, Instant>>,
    /// Bounds the concurrent lookups of unknown keys and ids.
    misses: Semaphore,
    /// False from a failed query until the next one succeeds (`/ready`, refusals).
    reachable: AtomicBool,
    /// True once a whole refresh succeeded (before that the node serves no app).
    loaded: AtomicBool,
    /// True once `ensure_table` succeeded (it runs before the first refresh that reaches the
    /// database).
    table_ready: AtomicBool,
    /// The last error of each bad row, by app id, so each distinct error is logged once. A
    /// mutex: only the refresh task and lookups write it, rarely.
    row_errors: Mutex<HashMap<String, String>>,
    /// One "unavailable" log line per 10 s.
    unavailable_log: LogLimit,
}

impl StoreSync {
    pub(crate) fn new(store: SqlStore, ttl: Duration) -> Self {
        StoreSync {
            store,
            ttl,
            negative: Mutex::new(HashMap::new()),
            misses: Semaphore::new(MISS_LOOKUPS),
            reachable: AtomicBool::new(false),
            loaded: AtomicBool::new(false),
            table_ready: AtomicBool::new(false),
            row_errors: Mutex::new(HashMap::new()),
            unavailable_log: LogLimit::new(Duration::from_secs(10)),
        }
    }

    /// How the store is doing, for `/ready`.
    pub(crate) fn health(&self) -> StoreHealth {
        if !self.loaded.load(Ordering::Acquire) {
            StoreHealth::NotLoaded
        } else if self.reachable.load(Ordering::Acquire) {
            StoreHealth::Ok
        } else {
            StoreHealth::Unreachable
        }
    }

    /// Reads the whole table and replaces the directory's view. `Err` leaves the view as it is.
    pub(crate) async fn refresh(&self, directory: &Directory) -> Result<Replaced, String> {
        if !self.table_ready.load(Ordering::Acquire) {
            self.store.ensure_table().await.map_err(|e| self.unavailable(&e.to_string()))?;
            self.table_ready.store(true, Ordering::Release);
        }
        let rows = self.store.load_all().await;
        let rows = rows.map_err(|e| self.unavailable(&e.to_string()))?;
        self.reachable.store(true, Ordering::Release);
        let (apps, webhooks) = self.validate_rows(&rows);
        let replaced = directory.replace(apps, webhooks);
        self.loaded.store(true, Ordering::Release);
        Ok(replaced)
    }

    /// Looks up a key or id the directory does not hold; on success the app is in the
    /// directory when this returns, with what changed (to apply) returned.
    pub(crate) async fn lookup(&self, directory: &Directory, by: By, value: &str) -> Option<Replaced> {
        let tag = match by {
            By::Key => format!("k:{value}"),
            By::Id => format!("i:{value}"),
        };
        if self.recently_unknown(&tag) {
            return None;
        }
        let _permit = self.misses.acquire().await.ok()?;
        // Another lookup may have found it while this one waited.
        let present = match by {
            By::Key => directory.by_key(value).is_some(),
            By::Id => directory.by_id(value).is_some(),
        };
        if present || self.recently_unknown(&tag) {
            return None;
        }
        let found = match by {
            By::Key => self.store.by_key(value).await,
            By::Id => self.store.by_id(value).await,
        };
        let row = match found {
            Ok(row) => {
                self.reachable.store(true, Ordering::Release);
                row
            }
            Err(e) => {
                self.unavailable(&e.to_string());
                return None;
            }
        };
        let valid = row.as_ref().and_then(|row| self.validate(row));
        match valid {
            Some((app, hooks)) => directory.upsert(app, hooks),
            None => {
                self.remember_unknown(tag);
                None
            }
        }
    }

    /// Runs [`StoreSync::refresh`] every `cache_ttl` (every second while the store fails),
    /// handing each change to `apply`, until `stop`.
    pub(crate) async fn run(
        self: Arc<Self>,
        directory: Arc<Directory>,
        apply: impl Fn(Replaced) + Send + 'static,
        stop: CancellationToken,
    ) {
        loop {
            let wait = match self.refresh(&directory).await {
                Ok(replaced) => {
                    apply(replaced);
                    self.ttl
                }
                Err(_) => RETRY.min(self.ttl),
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    fn validate_rows(&self, rows: &[AppRow]) -> (Vec<App>, HashMap<String, AppWebhooks>) {
        let mut apps = Vec::with_capacity(rows.len());
        let mut webhooks = HashMap::new();
        for row in rows {
            if let Some((app, hooks)) = self.validate(row) {
                if !hooks.targets.is_empty() {
                    webhooks.insert(app.id.clone(), hooks);
                }
                apps.push(app);
            }
        }
        // Rows gone from the table no longer need their error remembered.
        self.row_errors.lock().retain(|id, _| rows.iter().any(|r| &r.id == id));
        (apps, webhooks)
    }

    /// The row as an app, or `None` (logged once per distinct error) when it does not validate.
    fn validate(&self, row: &AppRow) -> Option<(App, AppWebhooks)> {
        match app_from_row(row) {
            Ok(valid) => {
                self.row_errors.lock().remove(&row.id);
                Some(valid)
            }
            Err(e) => {
                let message = e.to_string();
                let mut logged = self.row_errors.lock();
                if logged.get(&row.id) != Some(&message) {
                    tracing::error!("app store: app {:?} is unusable until its row is fixed: {message}", row.id);
                    logged.insert(row.id.clone(), message);
                }
                None
            }
        }
    }

    fn unavailable(&self, error: &str) -> String {
        self.reachable.store(false, Ordering::Release);
        if let Some(held_back) = self.unavailable_log.admit() {
            tracing::warn!(held_back, "{error}; cached apps keep working, unknown keys are refused");
        }
        error.to_owned()
    }

    fn recently_unknown(&self, tag: &str) -> bool {
        let mut negative = self.negative.lock();
        match negative.get(tag) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                negative.remove(tag);
                false
            }
            None => false,
        }
    }

    fn remember_unknown(&self, tag: String) {
        let mut negative = self.negative.lock();
        let now = Instant::now();
        if negative.len() >= NEGATIVE_MAX {
            negative.retain(|_, until| *until > now);
            if negative.len() >= NEGATIVE_MAX {
                negative.clear();
            }
        }
        negative.insert(tag, now + NEGATIVE_TTL);
    }
}
