//! Apps that change while connections are open (`Hub::apps_changed`): a rotated secret applies
//! to the next signature a session checks, changed limits to new work, and a disabled or
//! removed app's connections are closed with 4003 while other apps' stay open.

use std::collections::HashMap;

use herald_protocol::codes::CloseCode;
use parking_lot::Mutex;

use super::*;
use crate::app::{AppChange, AppStore};

/// A store whose view the test changes, as the server's directory does on a reload.
#[derive(Default)]
struct MutableStore(Mutex<HashMap<String, Arc<App>>>);

impl MutableStore {
    fn put(&self, app: App) -> Arc<App> {
        let app = Arc::new(app);
        self.0.lock().insert(app.id.clone(), app.clone());
        app
    }
    fn remove(&self, id: &str) {
        self.0.lock().remove(id);
    }
}

impl AppStore for MutableStore {
    fn by_key(&self, key: &str) -> Option<Arc<App>> {
        self.0.lock().values().find(|a| a.key == key).cloned()
    }
    fn by_id(&self, id: &str) -> Option<Arc<App>> {
        self.0.lock().get(id).cloned()
    }
}

fn other_app() -> App {
    App { id: "app-2".into(), key: "key-2".into(), secret: "secret-2".into(), limits: AppLimits::default() }
}

fn hub_over(store: Arc<MutableStore>) -> Arc<Hub> {
    Hub::new(store, HubSettings::default(), metrics(), None, Arc::new(LocalAdapter))
}

fn connect_key(hub: &Arc<Hub>, key: &str) -> Session {
    let s = hub.connect(key, Some("7"), false).expect("admitted");
    take(s.connection());
    s
}

#[test]
fn rotated_secret_applies_to_the_next_signature_checked() {
    let store = Arc::new(MutableStore::default());
    store.put(app(AppLimits::default()));
    let hub = hub_over(store.clone());
    let mut session = connect(&hub);
    let old_auth = channel_auth(&session, "private-a", None);

    let rotated = store.put(App { secret: "rotated".into(), ..app(AppLimits::default()) });
    hub.apps_changed(&[AppChange::Updated(rotated)]);

    assert!(session.handle_text(&subscribe_text("private-a", Some(&old_auth), None)).is_none());
    assert_eq!(take_events(session.connection()), [ERROR], "the old secret's signature is refused");
    let message = format!("{}:private-a", session.connection().socket_id_str);
    let new_auth = format!("{KEY}:{}", hmac_sha256_hex(b"rotated", message.as_bytes()));
    assert!(session.handle_text(&subscribe_text("private-a", Some(&new_auth), None)).is_none());
    assert_eq!(take_events(session.connection()), [SUCCEEDED]);
    assert!(close_request(session.connection()).is_none(), "an updated app's connections stay open");
}

#[test]
fn changed_limits_apply_to_new_work_not_to_what_is_admitted() {
    let store = Arc::new(MutableStore::default());
    store.put(app(AppLimits { max_connections: Some(3), ..AppLimits::default() }));
    let hub = hub_over(store.clone());
    let sessions: Vec<Session> = (0..3).map(|_| connect(&hub)).collect();

    let lowered = store.put(app(AppLimits { max_connections: Some(1), ..AppLimits::default() }));
    hub.apps_changed(&[AppChange::Updated(lowered)]);

    for s in &sessions {
        assert!(close_request(s.connection()).is_none(), "admitted connections are not re-checked");
    }
    let refused = hub.connect(KEY, Some("7"), false).expect_err("over the lowered quota");
    assert_eq!(refused.code, CloseCode::APP_OVER_QUOTA);
}

#[test]
fn disabled_app_connections_close_with_4003_and_other_apps_stay_open() {
    let store = Arc::new(MutableStore::default());
    store.put(app(AppLimits::default()));
    store.put(other_app());
    let hub = hub_over(store.clone());
    let a = connect(&hub);
    let b = connect_key(&hub, "key-2");

    let disabled = store.put(App { limits: AppLimits { enabled: false, ..AppLimits::default() }, ..other_app() });
    hub.apps_changed(&[AppChange::Updated(disabled)]);

    assert_eq!(close_request(b.connection()).map(|c| c.code), Some(CloseCode::APP_DISABLED));
    assert!(close_request(a.connection()).is_none());
    assert_eq!(hub.connect("key-2", Some("7"), false).expect_err("disabled").code, CloseCode::APP_DISABLED);
}

#[test]
fn removed_app_connections_close_with_4003_and_its_key_is_unknown() {
    let store = Arc::new(MutableStore::default());
    store.put(app(AppLimits::default()));
    let hub = hub_over(store.clone());
    let mut session = connect(&hub);

    store.remove(APP_ID);
    hub.apps_changed(&[AppChange::Removed(APP_ID.into())]);

    assert_eq!(close_request(session.connection()).map(|c| c.code), Some(CloseCode::APP_DISABLED));
    // the session still answers the frames it gets before its socket closes, with its last app
    assert!(session.handle_text(&subscribe_text("public-a", None, None)).is_none());
    assert_eq!(hub.connect(KEY, Some("7"), false).expect_err("removed").code, CloseCode::APP_NOT_FOUND);
}
