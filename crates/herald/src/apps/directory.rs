//! [`Directory`]: the server's current view of its apps.
//!
//! Every connection (by key), every HTTP API request (by id) and every session whose view is
//! stale reads it, so a read is one `ArcSwap` load and a hash lookup, with no lock. Writers
//! build a new view and swap it in; [`Directory::replace`] and [`Directory::upsert`] return the
//! [`AppChange`]s the caller hands to `Hub::apps_changed` (and the webhook targets to
//! `Webhooks::set_apps`) *after* the swap, so a connection admitted after a disable already
//! sees the disabled app.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use herald_core::app::{App, AppChange, AppStore};
use parking_lot::Mutex;

use crate::webhooks::config::AppWebhooks;

/// One immutable view of the apps.
#[derive(Debug, Default)]
struct View {
    by_id: HashMap<String, Arc<App>>,
    /// key → id (keys are unique across apps, as the config loader and the stores enforce).
    id_of_key: HashMap<String, String>,
    /// Webhook targets per app id (only apps that have targets).
    webhooks: HashMap<String, AppWebhooks>,
}

impl View {
    fn new(apps: Vec<App>, webhooks: HashMap<String, AppWebhooks>) -> Self {
        let mut view = View { webhooks, ..View::default() };
        for app in apps {
            view.id_of_key.insert(app.key.clone(), app.id.clone());
            view.by_id.insert(app.id.clone(), Arc::new(app));
        }
        view
    }
}

/// The apps this node serves, replaceable at run time (see the module doc).
#[derive(Debug)]
pub(crate) struct Directory {
    /// The current view. Readers load it without locking; writers swap in a whole new one.
    view: ArcSwap<View>,
    /// Serialises writers, so that a whole-view replacement and a single-app upsert racing each
    /// other cannot lose one's change. Held only while building and swapping a view: never
    /// across an `.await`, never while calling into the hub or the webhooks.
    write: Mutex<()>,
}

impl Directory {
    /// A directory serving `apps` with their webhook targets.
    pub(crate) fn new(apps: Vec<App>, webhooks: HashMap<String, AppWebhooks>) -> Self {
        Directory { view: ArcSwap::from_pointee(View::new(apps, webhooks)), write: Mutex::new(()) }
    }

    /// Replaces every app; returns what changed (apps added or changed, apps gone), in no
    /// particular order, and whether any app's webhook targets changed.
    pub(crate) fn replace(&self, apps: Vec<App>, webhooks: HashMap<String, AppWebhooks>) -> Replaced {
        let _writer = self.write.lock();
        let old = self.view.load_full();
        let new = View::new(apps, webhooks);
        let mut changes: Vec<AppChange> = new
            .by_id
            .values()
            .filter(|app| old.by_id.get(&app.id) != Some(*app))
            .map(|app| AppChange::Updated(app.clone()))
            .collect();
        changes.extend(
            old.by_id.keys().filter(|id| !new.by_id.contains_key(*id)).map(|id| AppChange::Removed(id.clone())),
        );
        let webhooks_changed = old.webhooks != new.webhooks;
        self.view.store(Arc::new(new));
        Replaced { changes, webhooks_changed }
    }

    /// Adds or updates one app (an app the store returned for a key or id not yet in the view).
    /// Returns the change, `None` when the app was already in the view as it is.
    pub(crate) fn upsert(&self, app: App, webhooks: AppWebhooks) -> Option<Replaced> {
        let _writer = self.write.lock();
        let old = self.view.load_full();
        if old.by_id.get(&app.id).is_some_and(|a| **a == app)
            && old.webhooks.get(&app.id).unwrap_or(&AppWebhooks::default()) == &webhooks
        {
            return None;
        }
        let mut apps: Vec<App> =
            old.by_id.values().filter(|a| a.id != app.id && a.key != app.key).map(|a| (**a).clone()).collect();
        let mut hooks = old.webhooks.clone();
        hooks.remove(&app.id);
        if !webhooks.targets.is_empty() {
            hooks.insert(app.id.clone(), webhooks);
        }
        apps.push(app);
        let new = View::new(apps, hooks);
        let changes: Vec<AppChange> = new
            .by_id
            .values()
            .filter(|a| old.by_id.get(&a.id) != Some(*a))
            .map(|a| AppChange::Updated(a.clone()))
            .chain(old.by_id.keys().filter(|id| !new.by_id.contains_key(*id)).map(|id| AppChange::Removed(id.clone())))
            .collect();
        let webhooks_changed = old.webhooks != new.webhooks;
        self.view.store(Arc::new(new));
        Some(Replaced { changes, webhooks_changed })
    }

    /// Webhook targets per app id, as the webhooks take them.
    pub(crate) fn webhooks(&self) -> HashMap<String, AppWebhooks> {
        self.view.load().webhooks.clone()
    }

    /// How many apps the view holds.
    pub(crate) fn len(&self) -> usize {
        self.view.load().by_id.len()
    }
}

/// What [`Directory::replace`] changed.
#[derive(Debug, Default)]
pub(crate) struct Replaced {
    pub changes: Vec<AppChange>,
    pub webhooks_changed: bool,
}

impl AppStore for Directory {
    fn by_key(&self, key: &str) -> Option<Arc<App>> {
        let view = self.view.load();
        view.id_of_key.get(key).and_then(|id| view.by_id.get(id)).cloned()
    }
    fn by_id(&self, id: &str) -> Option<Arc<App>> {
        self.view.load().by_id.get(id).cloned()
    }
    fn ids(&self) -> Vec<String> {
        self.view.load().by_id.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use herald_core::app::AppLimits;

    use super::*;

    fn app(id: &str, key: &str, secret: &str) -> App {
        App { id: id.into(), key: key.into(), secret: secret.into(), limits: AppLimits::default() }
    }

    fn ids(changes: &[AppChange]) -> Vec<String> {
        let mut v: Vec<String> = changes
            .iter()
            .map(|c| match c {
                AppChange::Updated(a) => format!("updated {}", a.id),
                AppChange::Removed(id) => format!("removed {id}"),
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replace_reports_added_changed_and_removed_apps_only() {
        let dir = Directory::new(vec![app("a", "ka", "s"), app("b", "kb", "s"), app("c", "kc", "s")], HashMap::new());
        let r = dir.replace(vec![app("a", "ka", "s"), app("b", "kb", "rotated"), app("d", "kd", "s")], HashMap::new());
        assert_eq!(ids(&r.changes), ["removed c", "updated b", "updated d"]);
        assert!(!r.webhooks_changed);
        assert_eq!(dir.by_key("kb").map(|a| a.secret.clone()).as_deref(), Some("rotated"));
        assert!(dir.by_key("kc").is_none() && dir.by_id("c").is_none());
        assert_eq!(dir.len(), 3);
    }

    #[test]
    fn a_changed_key_replaces_the_old_key() {
        let dir = Directory::new(vec![app("a", "old", "s")], HashMap::new());
        dir.replace(vec![app("a", "new", "s")], HashMap::new());
        assert!(dir.by_key("old").is_none());
        assert_eq!(dir.by_key("new").map(|a| a.id.clone()).as_deref(), Some("a"));
    }

    #[test]
    fn upsert_adds_or_changes_one_app_and_keeps_the_others() {
        let dir = Directory::new(vec![app("a", "ka", "s")], HashMap::new());
        let added = dir.upsert(app("b", "kb", "s"), AppWebhooks::default()).expect("changed");
        assert_eq!(ids(&added.changes), ["updated b"]);
        assert!(!added.webhooks_changed);
        assert!(dir.upsert(app("b", "kb", "s"), AppWebhooks::default()).is_none(), "unchanged");
        assert!(dir.upsert(app("b", "kb2", "s"), AppWebhooks::default()).is_some());
        assert!(dir.by_key("kb").is_none());
        assert!(dir.by_key("ka").is_some() && dir.by_key("kb2").is_some());
    }
}
