//! The `config_toml` fuzz target (see `crate::fuzzing`): a config file's text through the same
//! steps as `load_from` (TOML → [`Layer`](super::file::Layer), then validation, the
//! `[adapter]` section and the `[tls]` paths), without touching the file system or the process
//! environment (so the `[tls]` files named are not read: their contents are not the config's
//! text).
//!
//! Invariants: a parse error points at a line and column inside the text; loading is
//! deterministic; an accepted config obeys the bounds start-up promises (every bounded key
//! within its bound and positive where it must be, at least one app unless a SQL app store
//! supplies them (then none and no default app), app ids and keys unique,
//! per-app limits within theirs, webhook targets with at least one event type).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::{adapter, alerts, app_store, file, tls, validate, Config, ConfigError, Source};

/// Runs one input: the text of a config file.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let first = load(text);
    let second = load(text);
    assert_eq!(first.as_ref().ok(), second.as_ref().ok(), "loading is deterministic");
    match first {
        Ok(config) => check(&config),
        Err(ConfigError::Parse { line, column, message, .. }) => {
            assert!(line >= 1 && line <= text.lines().count() + 1, "line {line} of {text:?}");
            assert!(column >= 1, "column {column}");
            assert!(!message.is_empty());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fn load(text: &str) -> Result<Config, ConfigError> {
    let layer = file::parse(text, Path::new("fuzz.toml"))?;
    let file_adapter = layer.adapter.clone();
    let file_tls = layer.tls.clone();
    let file_alerts = layer.alerts.clone();
    let store = app_store::resolve(layer.app_store.as_ref(), &HashMap::new())?;
    let mut config = validate::resolve(vec![(Source::File, layer)], None, false, Vec::new(), &store)?;
    config.adapter = adapter::resolve(file_adapter.as_ref(), &HashMap::new())?;
    config.tls = tls::resolve(file_tls.as_ref(), &HashMap::new(), (None, None))?;
    config.alerts = alerts::resolve(file_alerts.as_deref())?;
    Ok(config)
}

fn check(c: &Config) {
    let within = |v: u64, max: u64| (1..=max).contains(&v);
    assert!(within(c.activity_timeout, 3_600) && within(c.pong_timeout, 3_600));
    assert!(within(c.max_ws_message_kb as u64, 65_536) && within(c.max_http_body_kb as u64, 65_536));
    assert!(within(c.outbound_queue_messages as u64, 1_000_000) && within(c.outbound_queue_kb as u64, 1_048_576));
    assert!(within(c.listen_backlog, 65_535) && within(c.cache_ttl, 2_592_000));
    assert!(c.shutdown_grace <= 3_600 && c.api_timestamp_tolerance <= 86_400);
    assert!(c.shutdown_drain_window_ms == 0 || c.shutdown_drain_window_ms < c.shutdown_grace * 1000);
    assert!(within(c.webhook_retry_initial_ms, 60_000) && within(c.webhook_timeout, 300));
    assert!(within(c.webhook_batch_max as u64, 10_000) && within(c.webhook_queue_size as u64, 10_000_000));
    assert!(c.path_prefix.is_empty() || (c.path_prefix.starts_with('/') && !c.path_prefix.ends_with('/')));
    assert!(!c.log_level.is_empty());
    for a in &c.alerts {
        assert!(a.url.starts_with("http://") || a.url.starts_with("https://"), "{}", a.url);
    }

    match c.app_store.sql() {
        None => assert!(!c.apps.is_empty(), "there is always an app"),
        Some(sql) => {
            assert!(c.apps.is_empty() && !c.default_app_in_use, "a SQL store is the only source of apps");
            assert!(within(sql.cache_ttl.as_secs(), 86_400) && !sql.table.is_empty());
        }
    }
    let ids: HashSet<&str> = c.apps.iter().map(|a| a.id.as_str()).collect();
    let keys: HashSet<&str> = c.apps.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(ids.len(), c.apps.len(), "app ids are unique");
    assert_eq!(keys.len(), c.apps.len(), "app keys are unique");
    for app in &c.apps {
        assert!(!app.id.is_empty() && !app.key.is_empty() && !app.secret.is_empty());
        let l = &app.limits;
        assert!(l.max_connections != Some(0));
        assert!(within(l.max_channel_name_length as u64, 1_000) && within(l.max_user_id_length as u64, 1_000));
        assert!(within(l.max_event_payload_in_kb as u64, 65_536) && within(l.max_event_batch_size as u64, 10_000));
        assert!(within(l.max_subscriptions_per_connection as u64, 100_000));
        assert!(within(u64::from(l.max_client_events_per_second), 1_000_000));
    }
    for (id, hooks) in &c.webhooks {
        assert!(ids.contains(id.as_str()), "webhooks of an unknown app {id:?}");
        assert!(!hooks.targets.is_empty());
        for t in &hooks.targets {
            assert!(!t.event_types.is_empty(), "a target with no event type");
            // Schemes are case-insensitive (RFC 3986 3.1): `HTTPS://` is a valid target URL.
            let url = url::Url::parse(&t.url).expect("an accepted target URL parses");
            assert!(matches!(url.scheme(), "http" | "https") && url.host_str().is_some(), "{:?}", t.url);
        }
    }
}
