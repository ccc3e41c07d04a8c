//! The webhook configuration at run time: which apps have targets, what each target wants, and
//! the per-app state that outlives a configuration change.
//!
//! [`Table`] is an immutable snapshot, app id → [`AppRoute`], holding only apps with targets.
//! It is published through an `ArcSwap` (`Shared::routes` in `mod.rs`): the socket hot path
//! (`WebhookSink`), the dispatcher (once per pass), the workers (once per attempt) and the
//! housekeeping task read it without a lock, and `Webhooks::set_apps` builds the next one with
//! [`build`] and swaps it in. A reader keeps the snapshot it loaded for as long as it holds it,
//! so a change never tears a lookup in half.
//!
//! An [`AppRoute`] is one generation of an app's configuration (its targets, batching, limits,
//! the event kinds the sink lets through). Its [`AppState`] — the sending end of the app's
//! event queue and its counters — is shared by consecutive generations, so a change of targets
//! keeps the events already queued, in order. An `AppState` lives while a table or a routed
//! delivery refers to it; once the app is in no table and its last delivery is written it is
//! dropped. Its queue is kept by `Shared::states` (`mod.rs`) while events wait in it (an app
//! given targets again gets it back), then closed, and the dispatcher retires it (`queues.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use herald_core::events::{ChannelEvent, EventKind, EventKinds};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::{mpsc, Notify};

use super::config::{AppWebhooks, WebhookSettings, WebhookTarget};
use super::per_app::PerApp;
use super::sender::Destination;

/// One app's caps: the node settings with the app's overrides applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Deliveries of the app the outbox holds at most (`webhook_max_pending`).
    pub max_pending: u64,
    /// Dead letters of the app kept at most (`webhook_dead_letters_max`).
    pub dead_letters_max: u64,
    /// Dead letters older than this are pruned (`webhook_dead_letter_max_age`).
    pub dead_letter_max_age: Duration,
}

impl Limits {
    /// The node-wide values (for dead letters of apps that have no targets any more).
    pub(crate) fn node(s: &WebhookSettings) -> Limits {
        Limits {
            max_pending: s.max_pending,
            dead_letters_max: s.dead_letters_max,
            dead_letter_max_age: s.dead_letter_max_age,
        }
    }

    /// `hooks`' overrides over the node values.
    pub(crate) fn of(hooks: &AppWebhooks, s: &WebhookSettings) -> Limits {
        Limits {
            max_pending: hooks.max_pending.unwrap_or(s.max_pending),
            dead_letters_max: hooks.dead_letters_max.unwrap_or(s.dead_letters_max),
            dead_letter_max_age: hooks.dead_letter_max_age.map_or(s.dead_letter_max_age, Duration::from_secs),
        }
    }
}

/// A configured target.
#[derive(Debug)]
pub(crate) struct Target {
    /// Stable identity in the outbox: `{app_id} {url}`, plus `#n` for the n-th repeat of the
    /// same URL in one app. Survives restarts and configuration changes as long as the target
    /// stays configured; one worker per key (`worker.rs`).
    pub key: String,
    pub app_id: Arc<str>,
    pub spec: WebhookTarget,
    /// Where to POST and the extra headers (the app's credentials are looked up per attempt).
    pub(in crate::webhooks) dest: Destination,
    /// Wakes the key's worker after the dispatcher (or a dead-letter resend) wrote work. One
    /// per key, shared by every generation that has the key (see [`build`]); a `Notify` stores
    /// one permit, so a wake-up sent while the worker is busy is not lost.
    pub notify: Arc<Notify>,
}

/// The outbox key of the `nth` target with `url` in app `app_id`.
pub(crate) fn target_key(app_id: &str, url: &str, nth: usize) -> String {
    if nth == 0 {
        format!("{app_id} {url}")
    } else {
        format!("{app_id} {url}#{nth}")
    }
}

/// What an app keeps across configuration generations.
#[derive(Debug)]
pub(crate) struct AppState {
    pub app_id: Arc<str>,
    /// The sending end of the app's bounded queue (`webhook_queue_size`); the dispatcher holds
    /// the receiving end (`queues::Lane`), `Shared::states` another sending end.
    queue: mpsc::Sender<ChannelEvent>,
    /// Counters and the aggregated warnings.
    pub per_app: Arc<PerApp>,
}

impl AppState {
    pub(crate) fn new(app_id: Arc<str>, queue: mpsc::Sender<ChannelEvent>, per_app: Arc<PerApp>) -> AppState {
        AppState { app_id, queue, per_app }
    }

    /// Queues `event` without waiting; false if the app's queue is full.
    pub(crate) fn try_send(&self, event: ChannelEvent) -> bool {
        self.queue.try_send(event).is_ok()
    }
}

/// One generation of an app's webhook configuration.
#[derive(Debug)]
pub(crate) struct AppRoute {
    pub state: Arc<AppState>,
    /// `batch_webhooks`.
    pub batch: bool,
    /// The kinds the sink lets through ([`wanted`] of the targets' `event_types`).
    pub wanted: EventKinds,
    pub targets: Vec<Arc<Target>>,
    pub limits: Limits,
}

/// The apps with webhook targets, by id. Immutable; replaced as a whole.
#[derive(Debug, Default)]
pub(crate) struct Table {
    apps: HashMap<String, Arc<AppRoute>>,
}

impl Table {
    pub(crate) fn get(&self, app_id: &str) -> Option<&Arc<AppRoute>> {
        self.apps.get(app_id)
    }

    /// The configured target `key` of `app_id`, with its app's route.
    pub(crate) fn target(&self, app_id: &str, key: &str) -> Option<(Arc<AppRoute>, Arc<Target>)> {
        let route = self.apps.get(app_id)?;
        let target = route.targets.iter().find(|t| t.key == key)?;
        Some((route.clone(), target.clone()))
    }

    /// Every configured target.
    pub(crate) fn targets(&self) -> impl Iterator<Item = &Arc<Target>> {
        self.apps.values().flat_map(|r| r.targets.iter())
    }

    /// Whether target `key` is configured.
    pub(crate) fn has_target(&self, key: &str) -> bool {
        let app = super::store::app_of(key);
        self.apps.get(app).is_some_and(|r| r.targets.iter().any(|t| t.key == key))
    }
}

/// Builds the table for `apps` (only apps with targets get an entry). `state` gives the app's
/// [`AppState`] (the live one if there is one, else a new one with a new queue); `notify`
/// gives the wake-up of a target key (the live one if any).
pub(crate) fn build(
    apps: &HashMap<String, AppWebhooks>,
    settings: &WebhookSettings,
    state: &mut dyn FnMut(&str) -> Arc<AppState>,
    notify: &mut dyn FnMut(&str) -> Arc<Notify>,
) -> Table {
    let mut table = Table::default();
    for (app_id, hooks) in apps {
        if hooks.targets.is_empty() {
            continue;
        }
        let id: Arc<str> = Arc::from(app_id.as_str());
        let mut targets: Vec<Arc<Target>> = Vec::with_capacity(hooks.targets.len());
        let mut mask = EventKinds::NONE;
        for spec in &hooks.targets {
            let nth = targets.iter().filter(|t| t.spec.url == spec.url).count();
            let key = target_key(app_id, &spec.url, nth);
            mask = mask.union(spec.event_types);
            targets.push(Arc::new(Target {
                notify: notify(&key),
                key,
                app_id: id.clone(),
                dest: destination(spec),
                spec: spec.clone(),
            }));
        }
        let route = AppRoute {
            state: state(app_id),
            batch: hooks.batch,
            wanted: wanted(mask),
            targets,
            limits: Limits::of(hooks, settings),
        };
        table.apps.insert(app_id.clone(), Arc::new(route));
    }
    table
}

/// Kinds an app's targets must be sent so that debouncing works: a removal cannot be
/// cancelled by a re-add the core never reported, so each pair is wanted together.
pub(crate) fn wanted(kinds: EventKinds) -> EventKinds {
    let pairs = [
        EventKinds::of(&[EventKind::Occupied, EventKind::Vacated]),
        EventKinds::of(&[EventKind::MemberAdded, EventKind::MemberRemoved]),
    ];
    pairs.into_iter().fold(kinds, |m, pair| if m.intersects(pair) { m.union(pair) } else { m })
}

fn destination(spec: &WebhookTarget) -> Destination {
    let mut extra_headers = HeaderMap::new();
    for (k, v) in &spec.headers {
        // Validated by the config loader.
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            extra_headers.insert(k, v);
        }
    }
    Destination { url: spec.url.clone(), extra_headers }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn target(url: &str, kinds: &[EventKind]) -> WebhookTarget {
        WebhookTarget {
            url: url.to_owned(),
            event_types: EventKinds::of(kinds),
            filter: Default::default(),
            headers: Vec::new(),
        }
    }

    #[test]
    fn build_keys_repeated_urls_applies_overrides_and_skips_apps_without_targets() {
        let settings = WebhookSettings::from_config(&Config::default());
        let hooks = AppWebhooks {
            targets: vec![
                target("http://h/a", &[EventKind::MemberAdded]),
                target("http://h/a", &[EventKind::CacheMiss]),
            ],
            max_pending: Some(7),
            ..Default::default()
        };
        let apps = HashMap::from([("a".to_owned(), hooks), ("b".to_owned(), AppWebhooks::default())]);
        let mut created = Vec::new();
        let mut state = |id: &str| {
            created.push(id.to_owned());
            let (tx, _rx) = mpsc::channel(1);
            let recorder = metrics::NoopRecorder;
            Arc::new(AppState::new(Arc::from(id), tx, Arc::new(PerApp::new(id, &recorder))))
        };
        let shared = Arc::new(Notify::new());
        let mut notify = |_: &str| shared.clone();
        let table = build(&apps, &settings, &mut state, &mut notify);
        assert_eq!(created, ["a"], "an app without targets gets no state");
        assert!(table.get("b").is_none());
        let a = table.get("a").expect("app a");
        let keys: Vec<&str> = a.targets.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["a http://h/a", "a http://h/a#1"]);
        assert!(table.has_target("a http://h/a#1") && !table.has_target("a http://h/b"));
        assert_eq!(a.limits.max_pending, 7, "the app's override");
        assert_eq!(a.limits.dead_letters_max, settings.dead_letters_max, "the node default");
        let want = EventKinds::of(&[EventKind::MemberAdded, EventKind::MemberRemoved, EventKind::CacheMiss]);
        assert_eq!(a.wanted, want, "a removal is wanted with its re-add");
    }
}
