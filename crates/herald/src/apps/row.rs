//! One row of the SQL app store and its conversion into an app.
//!
//! Owns [`AppRow`] (the columns as read, before validation) and [`app_from_row`], which turns
//! a row into the same [`App`] and [`AppWebhooks`] an `[[apps]]` table would give. A row is
//! validated by the config's own code (`FileApp` with `deny_unknown_fields`, `app_credentials`,
//! `app_limits`, `app_webhooks`), never by a copy of it, so a key means the same thing and
//! has the same bounds in the file and in the database. `id`, `key`, `secret` and `enabled`
//! are columns; every other `[[apps]]` key lives in the `settings` JSON object under the same
//! name (`webhooks` is the array of `[[apps.webhooks]]` tables). Errors name the app and the
//! column or `settings.<key>`: `app "shop": settings.max_connections: invalid type: …`.
//!
//! Also owns [`apply_change`], the one way a `NAME=VALUE` assignment (`herald apps add --set`,
//! `herald apps set`) changes a row, so the CLI and the store agree on which names are columns.

use herald_core::app::App;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{app_credentials, app_limits, app_webhooks, ConfigError, FileApp};
use crate::webhooks::config::AppWebhooks;

/// The `[[apps]]` keys that are columns of the table, not keys of `settings`.
pub const COLUMNS: [&str; 4] = ["id", "key", "secret", "enabled"];

/// One row as read from the table: the columns, `settings` as JSON text (an object).
#[derive(Clone, PartialEq, Eq)]
pub struct AppRow {
    /// The app id (primary key).
    pub id: String,
    /// The app key (unique).
    pub key: String,
    /// The app secret.
    pub secret: String,
    /// False: the app exists but refuses connections and API requests.
    pub enabled: bool,
    /// A JSON object whose keys are `[[apps]]` keys other than the four columns.
    pub settings: String,
}

impl std::fmt::Debug for AppRow {
    /// The secret is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRow")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("secret", &"********")
            .field("enabled", &self.enabled)
            .field("settings", &self.settings)
            .finish()
    }
}

/// Validates `row` exactly like an `[[apps]]` table and builds the app and its webhook
/// settings. Any problem is a [`ConfigError::AppRow`] naming the app id and the column or
/// `settings.<key>`.
pub fn app_from_row(row: &AppRow) -> Result<(App, AppWebhooks), ConfigError> {
    let in_app = |error: ConfigError| ConfigError::AppRow { app: row.id.clone(), error: Box::new(error) };
    let fa = file_app(row).map_err(in_app)?;
    let (id, key, secret) = app_credentials(&fa, str::to_owned).map_err(in_app)?;
    let limits = app_limits(&fa, |name| format!("settings.{name}")).map_err(in_app)?;
    let hooks = app_webhooks("settings", &fa).map_err(in_app)?;
    Ok((App { id, key, secret, limits }, hooks))
}

/// The row as the `[[apps]]` table it stands for.
fn file_app(row: &AppRow) -> Result<FileApp, ConfigError> {
    let map = settings_object(&row.settings)?;
    // Each key alone first, so a wrong type or an unknown key is reported under its name
    // (serde's own message does not say which field had the wrong type).
    for (name, value) in &map {
        if COLUMNS.contains(&name.as_str()) {
            return Err(ConfigError::invalid(format!("settings.{name}"), "is set by its column, not in settings"));
        }
        let alone = Value::Object(Map::from_iter([(name.clone(), value.clone())]));
        if let Err(e) = FileApp::deserialize(alone) {
            // serde lists every field as expected; the four columns are not settings.
            let message = e.to_string().replace("`id`, `key`, `secret`, `enabled`, ", "");
            return Err(ConfigError::invalid(format!("settings.{name}"), message));
        }
    }
    let mut fa =
        FileApp::deserialize(Value::Object(map)).map_err(|e| ConfigError::invalid("settings", e.to_string()))?;
    fa.id = Some(row.id.clone());
    fa.key = Some(row.key.clone());
    fa.secret = Some(row.secret.clone());
    fa.enabled = Some(row.enabled);
    Ok(fa)
}

/// `settings` as a JSON object (an error naming `settings` otherwise).
fn settings_object(text: &str) -> Result<Map<String, Value>, ConfigError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ConfigError::invalid(
            "settings",
            format!("must be a JSON object such as {{\"max_connections\": 100}}, got {}", kind(&other)),
        )),
        Err(e) => Err(ConfigError::invalid("settings", format!("is not valid JSON: {e}"))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Applies one `NAME=VALUE` assignment to `row`: `key` and `secret` (strings) and `enabled`
/// (a boolean) set their column; `id` cannot change; any other name sets that key of
/// `settings`, and `null` removes it (back to its default). The result is not validated here:
/// call [`app_from_row`] once every change is applied.
pub fn apply_change(row: &mut AppRow, name: &str, value: Value) -> Result<(), ConfigError> {
    match (name, value) {
        ("id", _) => Err(ConfigError::invalid("id", "cannot be changed (add a new app and remove this one)")),
        ("key", Value::String(s)) => {
            row.key = s;
            Ok(())
        }
        ("secret", Value::String(s)) => {
            row.secret = s;
            Ok(())
        }
        ("enabled", Value::Bool(b)) => {
            row.enabled = b;
            Ok(())
        }
        ("key" | "secret", v) => Err(ConfigError::invalid(name, format!("must be a string, got {}", kind(&v)))),
        ("enabled", v) => Err(ConfigError::invalid(name, format!("must be true or false, got {}", kind(&v)))),
        (_, value) => {
            if name.is_empty() {
                return Err(ConfigError::invalid("settings", "a setting needs a name (NAME=VALUE)"));
            }
            let mut map = settings_object(&row.settings)?;
            if value.is_null() {
                map.remove(name);
            } else {
                map.insert(name.to_owned(), value);
            }
            row.settings = Value::Object(map).to_string();
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row(settings: Value) -> AppRow {
        AppRow {
            id: "shop".into(),
            key: "shop-key".into(),
            secret: "s3cret".into(),
            enabled: true,
            settings: settings.to_string(),
        }
    }

    fn error(settings: Value) -> String {
        app_from_row(&row(settings)).unwrap_err().to_string()
    }

    #[test]
    fn empty_settings_give_the_per_app_defaults() {
        let (app, hooks) = app_from_row(&row(json!({}))).unwrap();
        assert_eq!((app.id.as_str(), app.key.as_str(), app.secret.as_str()), ("shop", "shop-key", "s3cret"));
        assert_eq!(app.limits, herald_core::app::AppLimits::default());
        assert!(hooks.targets.is_empty() && !hooks.batch);
    }

    #[test]
    fn settings_keys_are_the_apps_table_keys() {
        let (app, hooks) = app_from_row(&row(json!({
            "max_connections": 100,
            "enable_client_messages": true,
            "max_event_payload_in_kb": 20,
            "batch_webhooks": true,
            "webhook_max_pending": 500,
            "webhooks": [{
                "url": "https://example.com/hook",
                "event_types": ["channel_occupied", "member_added"],
                "filter": {"channel_name_starts_with": "presence-"},
                "headers": {"Authorization": "Bearer x"}
            }]
        })))
        .unwrap();
        assert_eq!(app.limits.max_connections, Some(100));
        assert!(app.limits.enable_client_messages);
        assert_eq!(app.limits.max_event_payload_in_kb, 20);
        assert!(hooks.batch);
        assert_eq!(hooks.max_pending, Some(500));
        assert_eq!(hooks.targets.len(), 1);
        assert_eq!(hooks.targets[0].url, "https://example.com/hook");
        assert_eq!(hooks.targets[0].filter.starts_with.as_deref(), Some("presence-"));
        assert_eq!(hooks.targets[0].headers, vec![("Authorization".to_owned(), "Bearer x".to_owned())]);
    }

    #[test]
    fn quota_settings_are_read_and_checked_like_the_file() {
        let (app, _) =
            app_from_row(&row(json!({"max_messages_per_day": 5000, "max_api_requests_per_second": 50}))).unwrap();
        assert_eq!((app.limits.max_messages_per_day, app.limits.max_api_requests_per_second), (Some(5000), Some(50)));
        let err = error(json!({"max_messages_per_day": 0}));
        assert_eq!(err, "app \"shop\": settings.max_messages_per_day: must be greater than 0 (omit it for no cap)");
        let err = error(json!({"max_api_requests_per_second": 1_000_001}));
        assert_eq!(err, "app \"shop\": settings.max_api_requests_per_second: must be at most 1000000, got 1000001");
    }

    #[test]
    fn enabled_comes_from_its_column() {
        let mut r = row(json!({}));
        r.enabled = false;
        assert!(!app_from_row(&r).unwrap().0.limits.enabled);
    }

    #[test]
    fn a_wrong_type_names_the_app_and_the_key() {
        let err = error(json!({"max_connections": "lots"}));
        assert!(err.starts_with("app \"shop\": settings.max_connections: invalid type: string \"lots\""), "{err}");
        let err = error(json!({"enable_client_messages": 1}));
        assert!(err.starts_with("app \"shop\": settings.enable_client_messages: invalid type"), "{err}");
        let err = error(json!({"max_event_batch_size": -1}));
        assert!(err.starts_with("app \"shop\": settings.max_event_batch_size: invalid value"), "{err}");
    }

    #[test]
    fn an_unknown_key_names_the_app_and_the_key() {
        let err = error(json!({"max_conections": 5}));
        assert!(err.starts_with("app \"shop\": settings.max_conections: unknown field `max_conections`"), "{err}");
        assert!(err.contains("expected one of `enable_client_messages`,"), "the columns are not offered: {err}");
    }

    #[test]
    fn column_keys_inside_settings_are_refused() {
        for name in COLUMNS {
            let err = error(json!({ name: "x" }));
            assert_eq!(err, format!("app \"shop\": settings.{name}: is set by its column, not in settings"));
        }
    }

    #[test]
    fn limits_are_checked_like_the_file() {
        let err = error(json!({"max_connections": 0}));
        assert_eq!(err, "app \"shop\": settings.max_connections: must be greater than 0 (omit it for no cap)");
        let err = error(json!({"max_event_payload_in_kb": 65_537}));
        assert_eq!(err, "app \"shop\": settings.max_event_payload_in_kb: must be at most 65536, got 65537");
        let err = error(json!({"webhook_dead_letters_max": 0}));
        assert_eq!(err, "app \"shop\": settings.webhook_dead_letters_max: must be greater than 0");
    }

    #[test]
    fn webhooks_are_checked_like_the_file() {
        let err = error(json!({"webhooks": [{"url": "ftp://x", "event_types": ["channel_occupied"]}]}));
        assert!(err.starts_with("app \"shop\": settings.webhooks[0].url: invalid value \"ftp://x\""), "{err}");
        let err = error(json!({"webhooks": [{"url": "https://x"}]}));
        assert!(err.starts_with("app \"shop\": settings.webhooks[0].event_types: is required"), "{err}");
        let err = error(json!({"webhooks": [{"uri": "https://x"}]}));
        assert!(err.starts_with("app \"shop\": settings.webhooks: unknown field `uri`"), "{err}");
    }

    #[test]
    fn settings_must_be_a_json_object() {
        assert!(error(json!([1])).starts_with("app \"shop\": settings: must be a JSON object"));
        let mut r = row(json!({}));
        r.settings = "{not json".into();
        let err = app_from_row(&r).unwrap_err().to_string();
        assert!(err.starts_with("app \"shop\": settings: is not valid JSON"), "{err}");
    }

    #[test]
    fn credentials_follow_the_file_rules() {
        let mut r = row(json!({}));
        r.key = "bad:key".into();
        let err = app_from_row(&r).unwrap_err().to_string();
        assert!(err.starts_with("app \"shop\": key: invalid value \"bad:key\""), "{err}");
        let mut r = row(json!({}));
        r.secret.clear();
        assert_eq!(app_from_row(&r).unwrap_err().to_string(), "app \"shop\": secret: must not be empty");
        let mut r = row(json!({}));
        r.id = "a b".into();
        assert!(app_from_row(&r).unwrap_err().to_string().starts_with("app \"a b\": id: invalid value"));
    }

    #[test]
    fn apply_change_sets_columns_and_merges_settings() {
        let mut r = row(json!({"max_connections": 5, "force_tls": true}));
        apply_change(&mut r, "key", json!("new-key")).unwrap();
        apply_change(&mut r, "secret", json!("new-secret")).unwrap();
        apply_change(&mut r, "enabled", json!(false)).unwrap();
        apply_change(&mut r, "max_connections", json!(10)).unwrap();
        apply_change(&mut r, "force_tls", Value::Null).unwrap();
        assert_eq!((r.key.as_str(), r.secret.as_str(), r.enabled), ("new-key", "new-secret", false));
        assert_eq!(serde_json::from_str::<Value>(&r.settings).unwrap(), json!({"max_connections": 10}));
    }

    #[test]
    fn apply_change_refuses_the_id_and_wrong_column_types() {
        let mut r = row(json!({}));
        assert!(apply_change(&mut r, "id", json!("x")).unwrap_err().to_string().starts_with("id: cannot be changed"));
        assert_eq!(
            apply_change(&mut r, "enabled", json!("yes")).unwrap_err().to_string(),
            "enabled: must be true or false, got a string"
        );
        assert_eq!(
            apply_change(&mut r, "key", json!(1)).unwrap_err().to_string(),
            "key: must be a string, got a number"
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        assert!(!format!("{:?}", row(json!({}))).contains("s3cret"));
    }
}
