//! Stacking the source layers and validating the result.
//!
//! Owns [`resolve`]: it applies the layers in precedence order onto the built-in defaults,
//! remembers which source set each key (so an error can say `(from HERALD_PORT)`), picks the
//! apps list, and rejects anything invalid. Validation fails fast on the first problem and
//! never replaces a bad value with a default.

use std::collections::HashMap;
use std::path::PathBuf;

use herald_core::app::{App, AppLimits};

use super::app_store::AppStoreConfig;
use super::cli::APP_FLAGS;
use super::env::APP_VARS;
use super::file::{FileApp, Layer};
use super::{default_app, Config, ConfigError, LogFormat, Source};
use crate::webhooks::config::AppWebhooks;

/// Where an app came from, to name its fields in errors.
#[derive(Clone, Copy)]
enum AppOrigin {
    File(usize),
    Env,
    Flags,
}

impl AppOrigin {
    fn field(self, name: &str) -> String {
        let i = match name {
            "id" => 0,
            "key" => 1,
            _ => 2,
        };
        match self {
            AppOrigin::File(n) => format!("apps[{n}].{name}"),
            AppOrigin::Env => APP_VARS[i].to_string(),
            AppOrigin::Flags => APP_FLAGS[i].to_string(),
        }
    }
}

/// Applies `layers` (lowest precedence first) onto the defaults and validates the result.
/// With a SQL `app_store` no source may name apps, and no default app is used.
pub(crate) fn resolve(
    layers: Vec<(Source, Layer)>,
    config_file: Option<PathBuf>,
    check_only: bool,
    warnings: Vec<String>,
    app_store: &AppStoreConfig,
) -> Result<Config, ConfigError> {
    let mut merged = Layer::default();
    let mut origin: HashMap<&'static str, Source> = HashMap::new();
    let mut apps: Option<(Vec<FileApp>, Option<AppOrigin>)> = None;

    // Precedence: each later layer overrides only what it sets.
    for (source, layer) in layers {
        if let Some(sql) = app_store.sql() {
            apps_from_store_only(sql.driver.name(), source, &layer)?;
        }
        macro_rules! overlay {
            ($($field:ident),* $(,)?) => {$(
                if layer.$field.is_some() {
                    merged.$field = layer.$field;
                    origin.insert(stringify!($field), source);
                }
            )*};
        }
        overlay!(
            host,
            port,
            path_prefix,
            activity_timeout,
            pong_timeout,
            authorized_connection_timeout,
            max_ws_message_kb,
            max_http_body_kb,
            api_timestamp_tolerance,
            strict_protocol_param,
            max_connections,
            outbound_queue_messages,
            outbound_queue_kb,
            shutdown_grace,
            shutdown_drain_window_ms,
            listen_backlog,
            cache_ttl,
            subscription_count_threshold,
            subscription_count_throttle,
            log_format,
            log_level,
            data_dir,
            webhook_removal_delay_ms,
            webhook_batch_ms,
            webhook_batch_max,
            webhook_retry_initial_ms,
            webhook_retry_max_elapsed,
            webhook_timeout,
            webhook_queue_size,
            webhook_max_pending,
            webhook_dead_letters_max,
            webhook_dead_letter_max_age,
            webhook_cache_miss_dedup_max,
            trusted_proxies,
            http_header_read_timeout,
            http_keep_alive_timeout,
            http_body_read_timeout,
            max_pending_connections,
            ws_connect_rate_per_ip,
            ws_connect_burst_per_ip,
            fd_reserve,
            metrics_port,
            metrics_host,
        );
        if let Some(list) = layer.apps {
            apps = Some((list, None));
        }
        if let Some((id, key, secret)) = layer.single_app {
            let app = FileApp { id: Some(id), key: Some(key), secret: Some(secret), ..FileApp::default() };
            let from = match source {
                Source::Flags => AppOrigin::Flags,
                _ => AppOrigin::Env,
            };
            apps = Some((vec![app], Some(from)));
        }
    }

    // Names a key in an error, adding where the value came from when it was not the file.
    let from = |key: &'static str| -> String {
        match origin.get(key) {
            Some(s @ (Source::Env | Source::Flags)) => format!(" (from {})", s.name_of(key)),
            _ => String::new(),
        }
    };
    let positive = |key: &'static str, v: u64| -> Result<(), ConfigError> {
        if v == 0 {
            Err(ConfigError::invalid(key, format!("must be greater than 0{}", from(key))))
        } else {
            Ok(())
        }
    };

    let metrics_host = merged.metrics_host.clone().unwrap_or_else(|| "127.0.0.1".to_string());
    if metrics_host.is_empty() || metrics_host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(ConfigError::invalid(
            "metrics_host",
            format!("invalid value {metrics_host:?}{}: expected an IP address or host name", from("metrics_host")),
        ));
    }
    let host = merged.host.unwrap_or_else(|| "0.0.0.0".to_string());
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(ConfigError::invalid(
            "host",
            format!("invalid value {host:?}{}: expected an IP address or host name", from("host")),
        ));
    }

    let path_prefix = merged.path_prefix.unwrap_or_default();
    if let Some(reason) = path_prefix_problem(&path_prefix) {
        return Err(ConfigError::invalid(
            "path_prefix",
            format!("invalid value {path_prefix:?}{}: {reason}", from("path_prefix")),
        ));
    }

    let log_level = merged.log_level.unwrap_or_else(|| "info".to_string());
    if log_level.trim().is_empty() {
        return Err(ConfigError::invalid("log_level", format!("must not be empty{}", from("log_level"))));
    }
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_level) {
        return Err(ConfigError::invalid(
            "log_level",
            format!(
                "invalid filter {log_level:?}{}: {e} (examples: \"info\", \"herald=debug,warn\")",
                from("log_level")
            ),
        ));
    }

    let data_dir = merged.data_dir.unwrap_or_else(|| PathBuf::from("./herald-data"));
    if data_dir.as_os_str().is_empty() {
        return Err(ConfigError::invalid("data_dir", format!("must not be empty{}", from("data_dir"))));
    }

    let max_connections = merged.max_connections.unwrap_or(None);
    if let Some(n) = max_connections {
        if n == 0 {
            return Err(ConfigError::invalid(
                "max_connections",
                format!("must be greater than 0; omit it or use \"unlimited\" for no cap{}", from("max_connections")),
            ));
        }
    }

    let config = Config {
        host,
        port: merged.port.unwrap_or(6001),
        path_prefix,
        activity_timeout: merged.activity_timeout.unwrap_or(120),
        pong_timeout: merged.pong_timeout.unwrap_or(30),
        authorized_connection_timeout: merged.authorized_connection_timeout.unwrap_or(30),
        max_ws_message_kb: merged.max_ws_message_kb.unwrap_or(32),
        max_http_body_kb: merged.max_http_body_kb.unwrap_or(256),
        api_timestamp_tolerance: merged.api_timestamp_tolerance.unwrap_or(600),
        strict_protocol_param: merged.strict_protocol_param.unwrap_or(false),
        max_connections,
        outbound_queue_messages: merged.outbound_queue_messages.unwrap_or(1000),
        outbound_queue_kb: merged.outbound_queue_kb.unwrap_or(1024),
        shutdown_grace: merged.shutdown_grace.unwrap_or(10),
        shutdown_drain_window_ms: merged.shutdown_drain_window_ms.unwrap_or(2000),
        listen_backlog: merged.listen_backlog.unwrap_or(4096),
        cache_ttl: merged.cache_ttl.unwrap_or(1800),
        subscription_count_threshold: merged.subscription_count_threshold.unwrap_or(100),
        subscription_count_throttle: merged.subscription_count_throttle.unwrap_or(5),
        log_format: merged.log_format.unwrap_or(LogFormat::Human),
        log_level,
        data_dir,
        webhook_removal_delay_ms: merged.webhook_removal_delay_ms.unwrap_or(3000),
        webhook_batch_ms: merged.webhook_batch_ms.unwrap_or(50),
        webhook_batch_max: merged.webhook_batch_max.unwrap_or(100),
        webhook_retry_initial_ms: merged.webhook_retry_initial_ms.unwrap_or(1000),
        webhook_retry_max_elapsed: merged.webhook_retry_max_elapsed.unwrap_or(300),
        webhook_timeout: merged.webhook_timeout.unwrap_or(10),
        webhook_queue_size: merged.webhook_queue_size.unwrap_or(100_000),
        webhook_max_pending: merged.webhook_max_pending.unwrap_or(50_000),
        webhook_dead_letters_max: merged.webhook_dead_letters_max.unwrap_or(10_000),
        webhook_dead_letter_max_age: merged.webhook_dead_letter_max_age.unwrap_or(604_800),
        webhook_cache_miss_dedup_max: merged.webhook_cache_miss_dedup_max.unwrap_or(10_000),
        trusted_proxies: trusted_proxies(merged.trusted_proxies.unwrap_or_default(), &from("trusted_proxies"))?,
        http_header_read_timeout: merged.http_header_read_timeout.unwrap_or(10),
        http_keep_alive_timeout: merged.http_keep_alive_timeout.unwrap_or(10),
        http_body_read_timeout: merged.http_body_read_timeout.unwrap_or(30),
        max_pending_connections: merged.max_pending_connections.unwrap_or(4096),
        ws_connect_rate_per_ip: merged.ws_connect_rate_per_ip.unwrap_or(0),
        ws_connect_burst_per_ip: merged.ws_connect_burst_per_ip.unwrap_or(50),
        fd_reserve: merged.fd_reserve.unwrap_or(64),
        metrics_port: merged.metrics_port,
        metrics_host,
        apps: Vec::new(),
        webhooks: HashMap::new(),
        adapter: super::adapter::AdapterConfig::Local,
        alerts: Vec::new(),
        app_store: app_store.clone(),
        tls: None,
        datadog: None,
        console: None,
        default_app_in_use: false,
        check_only,
        config_file,
        warnings,
    };

    let c = &config;
    // (key, value, the largest value it accepts): far above any sensible setting, low enough
    // that no arithmetic on a value (`Instant + Duration`, s → ms, KiB → bytes) can overflow.
    // docs/OPERATIONS.md lists the same bounds.
    let bounded: [(&'static str, u64, u64); 30] = [
        ("activity_timeout", c.activity_timeout, 3_600),
        ("pong_timeout", c.pong_timeout, 3_600),
        ("authorized_connection_timeout", c.authorized_connection_timeout, 3_600),
        ("max_ws_message_kb", c.max_ws_message_kb as u64, 65_536),
        ("max_http_body_kb", c.max_http_body_kb as u64, 65_536),
        ("api_timestamp_tolerance", c.api_timestamp_tolerance, 86_400),
        ("outbound_queue_messages", c.outbound_queue_messages as u64, 1_000_000),
        ("outbound_queue_kb", c.outbound_queue_kb as u64, 1_048_576),
        ("shutdown_grace", c.shutdown_grace, 3_600),
        ("shutdown_drain_window_ms", c.shutdown_drain_window_ms, 3_600_000),
        ("cache_ttl", c.cache_ttl, 2_592_000),
        ("subscription_count_threshold", c.subscription_count_threshold as u64, 10_000_000),
        ("subscription_count_throttle", c.subscription_count_throttle, 3_600),
        ("webhook_removal_delay_ms", c.webhook_removal_delay_ms, 600_000),
        ("webhook_batch_ms", c.webhook_batch_ms, 60_000),
        ("webhook_batch_max", c.webhook_batch_max as u64, 10_000),
        ("webhook_retry_max_elapsed", c.webhook_retry_max_elapsed, 604_800),
        ("webhook_timeout", c.webhook_timeout, 300),
        ("webhook_queue_size", c.webhook_queue_size as u64, 10_000_000),
        ("webhook_max_pending", c.webhook_max_pending, 10_000_000),
        ("webhook_dead_letters_max", c.webhook_dead_letters_max, 1_000_000),
        ("webhook_dead_letter_max_age", c.webhook_dead_letter_max_age, 31_536_000),
        ("webhook_cache_miss_dedup_max", c.webhook_cache_miss_dedup_max as u64, 1_000_000),
        ("http_header_read_timeout", c.http_header_read_timeout, 300),
        ("http_keep_alive_timeout", c.http_keep_alive_timeout, 300),
        ("http_body_read_timeout", c.http_body_read_timeout, 3_600),
        ("max_pending_connections", c.max_pending_connections as u64, 1_000_000),
        ("ws_connect_rate_per_ip", c.ws_connect_rate_per_ip, 1_000_000),
        ("ws_connect_burst_per_ip", c.ws_connect_burst_per_ip, 1_000_000),
        ("fd_reserve", c.fd_reserve as u64, 65_536),
    ];
    // Upper bounds first: the checks below compute with these values.
    for (key, v, max) in bounded {
        if v > max {
            return Err(ConfigError::invalid(key, format!("must be at most {max}, got {v}{}", from(key))));
        }
    }
    positive("activity_timeout", config.activity_timeout)?;
    positive("pong_timeout", config.pong_timeout)?;
    positive("authorized_connection_timeout", config.authorized_connection_timeout)?;
    positive("max_ws_message_kb", config.max_ws_message_kb as u64)?;
    positive("max_http_body_kb", config.max_http_body_kb as u64)?;
    positive("outbound_queue_messages", config.outbound_queue_messages as u64)?;
    positive("outbound_queue_kb", config.outbound_queue_kb as u64)?;
    positive("cache_ttl", config.cache_ttl)?;
    positive("listen_backlog", config.listen_backlog)?;
    positive("http_header_read_timeout", config.http_header_read_timeout)?;
    positive("http_keep_alive_timeout", config.http_keep_alive_timeout)?;
    positive("http_body_read_timeout", config.http_body_read_timeout)?;
    positive("max_pending_connections", config.max_pending_connections as u64)?;
    positive("ws_connect_burst_per_ip", config.ws_connect_burst_per_ip)?;
    // Waiting for the next request's head counts toward the header-read timeout too
    // (`serve/conn.rs`), so a longer keep-alive would never take effect.
    if config.http_keep_alive_timeout > config.http_header_read_timeout {
        return Err(ConfigError::invalid(
            "http_keep_alive_timeout",
            format!(
                "must not be longer than http_header_read_timeout ({} s), got {}{}",
                config.http_header_read_timeout,
                config.http_keep_alive_timeout,
                from("http_keep_alive_timeout")
            ),
        ));
    }
    if config.metrics_port.is_some_and(|p| p != 0 && p == config.port) {
        return Err(ConfigError::invalid(
            "metrics_port",
            format!("must differ from port ({}){}", config.port, from("metrics_port")),
        ));
    }
    if config.listen_backlog > 65_535 {
        return Err(ConfigError::Invalid {
            key: "listen_backlog".to_owned(),
            reason: format!(
                "must be at most 65535 (the kernel caps it at net.core.somaxconn), got {}",
                config.listen_backlog
            ),
        });
    }
    if config.shutdown_drain_window_ms > 0 && config.shutdown_drain_window_ms >= config.shutdown_grace * 1000 {
        return Err(ConfigError::Invalid {
            key: "shutdown_drain_window_ms".to_owned(),
            reason: format!(
                "must be shorter than shutdown_grace ({} s), got {} ms",
                config.shutdown_grace, config.shutdown_drain_window_ms
            ),
        });
    }
    positive("subscription_count_throttle", config.subscription_count_throttle)?;
    positive("webhook_batch_max", config.webhook_batch_max as u64)?;
    positive("webhook_retry_initial_ms", config.webhook_retry_initial_ms)?;
    positive("webhook_retry_max_elapsed", config.webhook_retry_max_elapsed)?;
    positive("webhook_timeout", config.webhook_timeout)?;
    positive("webhook_queue_size", config.webhook_queue_size as u64)?;
    positive("webhook_max_pending", config.webhook_max_pending)?;
    positive("webhook_dead_letters_max", config.webhook_dead_letters_max)?;
    positive("webhook_dead_letter_max_age", config.webhook_dead_letter_max_age)?;
    positive("webhook_cache_miss_dedup_max", config.webhook_cache_miss_dedup_max as u64)?;
    if config.webhook_retry_initial_ms > 60_000 {
        return Err(ConfigError::invalid(
            "webhook_retry_initial_ms",
            format!(
                "must be at most 60000 (the retry delay cap), got {}{}",
                config.webhook_retry_initial_ms,
                from("webhook_retry_initial_ms")
            ),
        ));
    }

    let mut config = config;
    match apps {
        // Apps are read from the database at run time (no source named any: checked above).
        _ if app_store.sql().is_some() => {}
        Some((list, origin)) if !list.is_empty() => {
            (config.apps, config.webhooks) = build_apps(list, origin)?;
        }
        // No apps anywhere (or an empty `apps = []`): the built-in, publicly known app.
        _ => {
            config.apps = vec![default_app()];
            config.default_app_in_use = true;
        }
    }

    // Consistent but probably unintended: the transport limit is hit before the app limit.
    for (i, app) in config.apps.iter().enumerate() {
        let payload = app.limits.max_event_payload_in_kb;
        if app.limits.enable_client_messages && payload >= config.max_ws_message_kb {
            config.warnings.push(format!(
                "apps[{i}].max_event_payload_in_kb ({payload}) is not below max_ws_message_kb \
                 ({}): large client events will hit the WebSocket message limit (close 1009)",
                config.max_ws_message_kb
            ));
        }
        if payload >= config.max_http_body_kb {
            config.warnings.push(format!(
                "apps[{i}].max_event_payload_in_kb ({payload}) is not below max_http_body_kb \
                 ({}): large publishes will hit the HTTP body limit",
                config.max_http_body_kb
            ));
        }
    }
    Ok(config)
}

/// With a SQL app store the database is the one source of truth for apps: a source that
/// names apps too is an error saying which (rather than one silently winning).
fn apps_from_store_only(driver: &str, source: Source, layer: &Layer) -> Result<(), ConfigError> {
    let given = match source {
        Source::File if layer.apps.is_some() => "[[apps]] tables in the config file",
        Source::Env if layer.single_app.is_some() => "HERALD_APP_ID, HERALD_APP_KEY and HERALD_APP_SECRET",
        Source::Flags if layer.single_app.is_some() => "--app-id, --app-key and --app-secret",
        _ => return Ok(()),
    };
    Err(ConfigError::invalid(
        "apps",
        format!(
            "{given} cannot be used with app_store.driver = {driver:?}: apps come from the database \
             (one source of truth; manage them with `herald apps`)"
        ),
    ))
}

/// Parses `trusted_proxies`: IP addresses (one host) or CIDR ranges. `from` names the source.
fn trusted_proxies(list: Vec<String>, from: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    list.iter()
        .map(|entry| {
            let entry = entry.trim();
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| {
                    ConfigError::invalid(
                        "trusted_proxies",
                        format!("invalid entry {entry:?}{from}: expected an IP address or a CIDR range (10.0.0.0/8)"),
                    )
                })
        })
        .collect()
}

/// Why a `path_prefix` is unacceptable, if it is.
fn path_prefix_problem(p: &str) -> Option<&'static str> {
    if p.is_empty() {
        return None;
    }
    if !p.starts_with('/') {
        return Some("must be empty or start with \"/\"");
    }
    if p.ends_with('/') {
        return Some("must not end with \"/\" (use \"\" for no prefix)");
    }
    if p.contains("//") {
        return Some("must not contain \"//\"");
    }
    if p.contains(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#')) {
        return Some("must not contain whitespace, \"?\" or \"#\"");
    }
    None
}

/// Validates the apps list: credentials present and well-formed, ids and keys unique, limits
/// in range, webhook targets valid (returned per app id, only for apps that have targets).
/// `origin` is `None` for the file's `[[apps]]` list.
fn build_apps(
    list: Vec<FileApp>,
    origin: Option<AppOrigin>,
) -> Result<(Vec<App>, HashMap<String, AppWebhooks>), ConfigError> {
    let mut apps: Vec<App> = Vec::with_capacity(list.len());
    let mut webhooks: HashMap<String, AppWebhooks> = HashMap::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut keys: HashMap<String, usize> = HashMap::new();
    for (i, fa) in list.into_iter().enumerate() {
        let o = origin.unwrap_or(AppOrigin::File(i));
        let (id, key, secret) = app_credentials(&fa, |name| o.field(name))?;
        if let Some(prev) = ids.insert(id.clone(), i) {
            return Err(ConfigError::invalid(
                o.field("id"),
                format!("duplicate app id {id:?} (also used by apps[{prev}])"),
            ));
        }
        if let Some(prev) = keys.insert(key.clone(), i) {
            return Err(ConfigError::invalid(
                o.field("key"),
                format!("duplicate app key {key:?} (also used by apps[{prev}])"),
            ));
        }

        let limits = app_limits(&fa, |name| format!("apps[{i}].{name}"))?;
        let hooks = super::webhooks::app_webhooks(&format!("apps[{i}]"), &fa)?;
        if !hooks.targets.is_empty() {
            webhooks.insert(id.clone(), hooks);
        }
        apps.push(App { id, key, secret, limits });
    }
    Ok((apps, webhooks))
}

/// An app's `id`, `key` and `secret`: present, not empty, and (id and key) only letters,
/// digits, `_` and `-`. `field` names a credential in errors (`apps[0].key`, `HERALD_APP_KEY`).
pub(crate) fn app_credentials(
    fa: &FileApp,
    field: impl Fn(&str) -> String,
) -> Result<(String, String, String), ConfigError> {
    let required = |name: &str, v: Option<String>| -> Result<String, ConfigError> {
        match v {
            None => Err(ConfigError::invalid(field(name), "is required")),
            Some(s) if s.is_empty() => Err(ConfigError::invalid(field(name), "must not be empty")),
            Some(s) => Ok(s),
        }
    };
    let id = required("id", fa.id.clone())?;
    let key = required("key", fa.key.clone())?;
    let secret = required("secret", fa.secret.clone())?;

    let token = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !id.chars().all(token) {
        return Err(ConfigError::invalid(
            field("id"),
            format!("invalid value {id:?}: only letters, digits, '_' and '-' are allowed"),
        ));
    }
    if !key.chars().all(token) {
        return Err(ConfigError::invalid(
            field("key"),
            format!(
                "invalid value {key:?}: only letters, digits, '_' and '-' are allowed \
                 (':' separates key and signature in auth tokens)"
            ),
        ));
    }
    Ok((id, key, secret))
}

/// Per-app limits: defaults (PROTOCOL.md 13.1) overridden by the app's keys, then checked.
/// `name` turns a key into the name errors show (`apps[0].max_connections`).
pub(crate) fn app_limits(fa: &FileApp, name: impl Fn(&str) -> String) -> Result<AppLimits, ConfigError> {
    let d = AppLimits::default();
    let l = AppLimits {
        enabled: fa.enabled.unwrap_or(d.enabled),
        enable_client_messages: fa.enable_client_messages.unwrap_or(d.enable_client_messages),
        max_connections: fa.max_connections.or(d.max_connections),
        max_presence_members_per_channel: fa
            .max_presence_members_per_channel
            .unwrap_or(d.max_presence_members_per_channel),
        max_presence_member_size_in_kb: fa.max_presence_member_size_in_kb.unwrap_or(d.max_presence_member_size_in_kb),
        max_event_payload_in_kb: fa.max_event_payload_in_kb.unwrap_or(d.max_event_payload_in_kb),
        max_event_channels_at_once: fa.max_event_channels_at_once.unwrap_or(d.max_event_channels_at_once),
        max_event_batch_size: fa.max_event_batch_size.unwrap_or(d.max_event_batch_size),
        max_channel_name_length: fa.max_channel_name_length.unwrap_or(d.max_channel_name_length),
        max_event_name_length: fa.max_event_name_length.unwrap_or(d.max_event_name_length),
        max_user_id_length: fa.max_user_id_length.unwrap_or(d.max_user_id_length),
        max_client_events_per_second: fa.max_client_events_per_second.unwrap_or(d.max_client_events_per_second),
        require_authorized_connections: fa.require_authorized_connections.unwrap_or(d.require_authorized_connections),
        enable_watchlist_events: fa.enable_watchlist_events.unwrap_or(d.enable_watchlist_events),
        max_watchlist_size: fa.max_watchlist_size.unwrap_or(d.max_watchlist_size),
        max_subscriptions_per_connection: fa
            .max_subscriptions_per_connection
            .unwrap_or(d.max_subscriptions_per_connection),
        max_channels: fa.max_channels.or(d.max_channels),
        enable_subscription_count: fa.enable_subscription_count.unwrap_or(d.enable_subscription_count),
        emit_subscription_error: fa.emit_subscription_error.unwrap_or(d.emit_subscription_error),
        force_tls: fa.force_tls.unwrap_or(d.force_tls),
        max_messages_per_day: fa.max_messages_per_day.or(d.max_messages_per_day),
        max_api_requests_per_second: fa.max_api_requests_per_second.or(d.max_api_requests_per_second),
    };

    // (key, value, the largest value it accepts; `max_connections`, `max_channels` and
    // `max_messages_per_day` have none: omit them for no cap). docs/OPERATIONS.md lists the
    // same bounds.
    let checks: [(&str, u64, u64); 15] = [
        ("max_connections", l.max_connections.unwrap_or(1), u64::MAX),
        ("max_channels", l.max_channels.unwrap_or(1), u64::MAX),
        ("max_messages_per_day", l.max_messages_per_day.unwrap_or(1), u64::MAX),
        ("max_api_requests_per_second", l.max_api_requests_per_second.unwrap_or(1), 1_000_000),
        ("max_presence_members_per_channel", l.max_presence_members_per_channel as u64, 1_000_000),
        ("max_presence_member_size_in_kb", l.max_presence_member_size_in_kb as u64, 1_024),
        ("max_event_payload_in_kb", l.max_event_payload_in_kb as u64, 65_536),
        ("max_event_channels_at_once", l.max_event_channels_at_once as u64, 10_000),
        ("max_event_batch_size", l.max_event_batch_size as u64, 10_000),
        ("max_channel_name_length", l.max_channel_name_length as u64, 1_000),
        ("max_event_name_length", l.max_event_name_length as u64, 1_000),
        ("max_user_id_length", l.max_user_id_length as u64, 1_000),
        ("max_client_events_per_second", l.max_client_events_per_second as u64, 1_000_000),
        ("max_watchlist_size", l.max_watchlist_size as u64, 10_000),
        ("max_subscriptions_per_connection", l.max_subscriptions_per_connection as u64, 100_000),
    ];
    for (key, v, max) in checks {
        if v > max {
            return Err(ConfigError::invalid(name(key), format!("must be at most {max}, got {v}")));
        }
        if v == 0 {
            let hint = match key {
                "max_connections" | "max_channels" | "max_messages_per_day" | "max_api_requests_per_second" => {
                    " (omit it for no cap)"
                }
                "max_client_events_per_second" => " (set enable_client_messages = false to turn client events off)",
                _ => "",
            };
            return Err(ConfigError::invalid(name(key), format!("must be greater than 0{hint}")));
        }
    }
    Ok(l)
}
