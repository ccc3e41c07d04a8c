//! Environment-variable source.
//!
//! Owns the mapping `HERALD_<UPPERCASE_FIELD>` → [`Layer`] field, plus `HERALD_APP_ID` /
//! `HERALD_APP_KEY` / `HERALD_APP_SECRET` (all three or none) and `HERALD_CONFIG`. The
//! environment is passed in as a map rather than read here, so tests never touch the process
//! environment. A value that does not parse is an error naming the variable and the value;
//! nothing falls back to a default silently.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;

use super::file::Layer;
use super::{ConfigError, LogFormat};

/// The variable naming the config file (the `--config` flag wins over it).
pub(super) const CONFIG_VAR: &str = "HERALD_CONFIG";

/// Every top-level setting readable from the environment, as (config key, variable).
const SCALAR_VARS: &[(&str, &str)] = &[
    ("host", "HERALD_HOST"),
    ("port", "HERALD_PORT"),
    ("path_prefix", "HERALD_PATH_PREFIX"),
    ("activity_timeout", "HERALD_ACTIVITY_TIMEOUT"),
    ("pong_timeout", "HERALD_PONG_TIMEOUT"),
    ("authorized_connection_timeout", "HERALD_AUTHORIZED_CONNECTION_TIMEOUT"),
    ("max_ws_message_kb", "HERALD_MAX_WS_MESSAGE_KB"),
    ("max_http_body_kb", "HERALD_MAX_HTTP_BODY_KB"),
    ("api_timestamp_tolerance", "HERALD_API_TIMESTAMP_TOLERANCE"),
    ("strict_protocol_param", "HERALD_STRICT_PROTOCOL_PARAM"),
    ("max_connections", "HERALD_MAX_CONNECTIONS"),
    ("outbound_queue_messages", "HERALD_OUTBOUND_QUEUE_MESSAGES"),
    ("outbound_queue_kb", "HERALD_OUTBOUND_QUEUE_KB"),
    ("shutdown_grace", "HERALD_SHUTDOWN_GRACE"),
    ("shutdown_drain_window_ms", "HERALD_SHUTDOWN_DRAIN_WINDOW_MS"),
    ("listen_backlog", "HERALD_LISTEN_BACKLOG"),
    ("cache_ttl", "HERALD_CACHE_TTL"),
    ("subscription_count_threshold", "HERALD_SUBSCRIPTION_COUNT_THRESHOLD"),
    ("subscription_count_throttle", "HERALD_SUBSCRIPTION_COUNT_THROTTLE"),
    ("log_format", "HERALD_LOG_FORMAT"),
    ("log_level", "HERALD_LOG_LEVEL"),
    ("data_dir", "HERALD_DATA_DIR"),
    ("webhook_removal_delay_ms", "HERALD_WEBHOOK_REMOVAL_DELAY_MS"),
    ("webhook_batch_ms", "HERALD_WEBHOOK_BATCH_MS"),
    ("webhook_batch_max", "HERALD_WEBHOOK_BATCH_MAX"),
    ("webhook_retry_initial_ms", "HERALD_WEBHOOK_RETRY_INITIAL_MS"),
    ("webhook_retry_max_elapsed", "HERALD_WEBHOOK_RETRY_MAX_ELAPSED"),
    ("webhook_timeout", "HERALD_WEBHOOK_TIMEOUT"),
    ("webhook_queue_size", "HERALD_WEBHOOK_QUEUE_SIZE"),
    ("webhook_max_pending", "HERALD_WEBHOOK_MAX_PENDING"),
    ("webhook_dead_letters_max", "HERALD_WEBHOOK_DEAD_LETTERS_MAX"),
    ("webhook_dead_letter_max_age", "HERALD_WEBHOOK_DEAD_LETTER_MAX_AGE"),
    ("webhook_cache_miss_dedup_max", "HERALD_WEBHOOK_CACHE_MISS_DEDUP_MAX"),
    ("trusted_proxies", "HERALD_TRUSTED_PROXIES"),
    ("http_header_read_timeout", "HERALD_HTTP_HEADER_READ_TIMEOUT"),
    ("http_keep_alive_timeout", "HERALD_HTTP_KEEP_ALIVE_TIMEOUT"),
    ("http_body_read_timeout", "HERALD_HTTP_BODY_READ_TIMEOUT"),
    ("max_pending_connections", "HERALD_MAX_PENDING_CONNECTIONS"),
    ("ws_connect_rate_per_ip", "HERALD_WS_CONNECT_RATE_PER_IP"),
    ("ws_connect_burst_per_ip", "HERALD_WS_CONNECT_BURST_PER_IP"),
    ("fd_reserve", "HERALD_FD_RESERVE"),
    ("metrics_port", "HERALD_METRICS_PORT"),
    ("metrics_host", "HERALD_METRICS_HOST"),
];

/// The single-app credential variables, in (id, key, secret) order.
pub(super) const APP_VARS: [&str; 3] = ["HERALD_APP_ID", "HERALD_APP_KEY", "HERALD_APP_SECRET"];

/// Builds the environment layer. Returns the layer and warnings about unrecognised
/// `HERALD_*` variables (likely typos; reported, not fatal, since other tools share the prefix).
pub(crate) fn layer(env: &HashMap<String, String>) -> Result<(Layer, Vec<String>), ConfigError> {
    let get = |var: &str| env.get(var).map(String::as_str);
    let mut l = Layer::default();
    for &(key, var) in SCALAR_VARS {
        let Some(raw) = get(var) else { continue };
        let bad = |reason: &str| ConfigError::InvalidValue {
            key: key.to_string(),
            source_name: var.to_string(),
            value: raw.to_string(),
            reason: reason.to_string(),
        };
        let v = raw.trim();
        match key {
            "host" => l.host = Some(raw.to_string()),
            "port" => l.port = Some(num(v).map_err(|_| bad("expected an integer 0-65535"))?),
            "path_prefix" => l.path_prefix = Some(raw.to_string()),
            "activity_timeout" => l.activity_timeout = Some(secs(v).map_err(bad)?),
            "pong_timeout" => l.pong_timeout = Some(secs(v).map_err(bad)?),
            "authorized_connection_timeout" => l.authorized_connection_timeout = Some(secs(v).map_err(bad)?),
            "max_ws_message_kb" => l.max_ws_message_kb = Some(size(v).map_err(bad)?),
            "max_http_body_kb" => l.max_http_body_kb = Some(size(v).map_err(bad)?),
            "api_timestamp_tolerance" => l.api_timestamp_tolerance = Some(secs(v).map_err(bad)?),
            "strict_protocol_param" => l.strict_protocol_param = Some(boolean(v).map_err(bad)?),
            "max_connections" => l.max_connections = Some(limit(v).map_err(bad)?),
            "outbound_queue_messages" => l.outbound_queue_messages = Some(size(v).map_err(bad)?),
            "outbound_queue_kb" => l.outbound_queue_kb = Some(size(v).map_err(bad)?),
            "shutdown_grace" => l.shutdown_grace = Some(secs(v).map_err(bad)?),
            "shutdown_drain_window_ms" => l.shutdown_drain_window_ms = Some(secs(v).map_err(bad)?),
            "listen_backlog" => l.listen_backlog = Some(num(v).map_err(|_| bad("expected a whole number"))?),
            "cache_ttl" => l.cache_ttl = Some(secs(v).map_err(bad)?),
            "subscription_count_threshold" => l.subscription_count_threshold = Some(size(v).map_err(bad)?),
            "subscription_count_throttle" => l.subscription_count_throttle = Some(secs(v).map_err(bad)?),
            "log_format" => {
                l.log_format = Some(LogFormat::from_str(v).map_err(|e| bad(&e))?);
            }
            "log_level" => l.log_level = Some(raw.to_string()),
            "data_dir" => l.data_dir = Some(PathBuf::from(raw)),
            "webhook_removal_delay_ms" => l.webhook_removal_delay_ms = Some(millis(v).map_err(bad)?),
            "webhook_batch_ms" => l.webhook_batch_ms = Some(millis(v).map_err(bad)?),
            "webhook_batch_max" => l.webhook_batch_max = Some(size(v).map_err(bad)?),
            "webhook_retry_initial_ms" => l.webhook_retry_initial_ms = Some(millis(v).map_err(bad)?),
            "webhook_retry_max_elapsed" => l.webhook_retry_max_elapsed = Some(secs(v).map_err(bad)?),
            "webhook_timeout" => l.webhook_timeout = Some(secs(v).map_err(bad)?),
            "webhook_queue_size" => l.webhook_queue_size = Some(size(v).map_err(bad)?),
            "webhook_max_pending" => l.webhook_max_pending = Some(size(v).map_err(bad)? as u64),
            "webhook_dead_letters_max" => l.webhook_dead_letters_max = Some(size(v).map_err(bad)? as u64),
            "webhook_dead_letter_max_age" => l.webhook_dead_letter_max_age = Some(secs(v).map_err(bad)?),
            "webhook_cache_miss_dedup_max" => l.webhook_cache_miss_dedup_max = Some(size(v).map_err(bad)?),
            "http_header_read_timeout" => l.http_header_read_timeout = Some(secs(v).map_err(bad)?),
            "http_keep_alive_timeout" => l.http_keep_alive_timeout = Some(secs(v).map_err(bad)?),
            "http_body_read_timeout" => l.http_body_read_timeout = Some(secs(v).map_err(bad)?),
            "max_pending_connections" => l.max_pending_connections = Some(size(v).map_err(bad)?),
            "ws_connect_rate_per_ip" => {
                l.ws_connect_rate_per_ip = Some(num(v).map_err(|_| bad("expected a whole number"))?)
            }
            "ws_connect_burst_per_ip" => {
                l.ws_connect_burst_per_ip = Some(num(v).map_err(|_| bad("expected a whole number"))?)
            }
            "fd_reserve" => l.fd_reserve = Some(size(v).map_err(bad)?),
            "metrics_host" => l.metrics_host = Some(raw.trim().to_string()),
            "metrics_port" => l.metrics_port = Some(num(v).map_err(|_| bad("expected an integer 0-65535"))?),
            // Comma-separated; each entry is checked by validation, naming the variable.
            "trusted_proxies" => {
                l.trusted_proxies =
                    Some(v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
            }
            _ => unreachable!("SCALAR_VARS and this match list the same keys"),
        }
    }
    l.single_app = credentials(APP_VARS, |v| get(v).map(str::to_string))?;

    let mut warnings: Vec<String> = env
        .keys()
        .filter(|k| k.starts_with("HERALD_"))
        .filter(|k| {
            k.as_str() != CONFIG_VAR
                && !APP_VARS.contains(&k.as_str())
                && !super::adapter::ADAPTER_VARS.contains(&k.as_str())
                && !super::app_store::APP_STORE_VARS.contains(&k.as_str())
                && !super::tls::TLS_VARS.contains(&k.as_str())
                && !super::datadog::DATADOG_VARS.contains(&k.as_str())
                && !super::console::CONSOLE_VARS.contains(&k.as_str())
                && !SCALAR_VARS.iter().any(|&(_, v)| v == k.as_str())
        })
        .map(|k| format!("ignoring unknown environment variable {k}"))
        .collect();
    warnings.sort();
    Ok((l, warnings))
}

/// All three credentials or none; `names` are the variables or flags, for the error.
pub(crate) fn credentials(
    names: [&str; 3],
    mut get: impl FnMut(&str) -> Option<String>,
) -> Result<Option<(String, String, String)>, ConfigError> {
    let [id, key, secret] = names.map(&mut get);
    match (id, key, secret) {
        (None, None, None) => Ok(None),
        (Some(i), Some(k), Some(s)) => Ok(Some((i, k, s))),
        (i, k, s) => {
            let present = [i.is_some(), k.is_some(), s.is_some()];
            let missing = names[present.iter().position(|p| !p).unwrap_or(0)];
            let given: Vec<&str> = names.iter().zip(present).filter(|(_, p)| *p).map(|(n, _)| *n).collect();
            Err(ConfigError::IncompleteAppCredentials {
                missing: missing.to_string(),
                all: format!("{}, {} and {}", names[0], names[1], names[2]),
                given: given.join(", "),
            })
        }
    }
}

fn num<T: FromStr>(v: &str) -> Result<T, ()> {
    v.parse().map_err(|_| ())
}

fn secs(v: &str) -> Result<u64, &'static str> {
    num(v).map_err(|_| "expected a whole number of seconds")
}

fn millis(v: &str) -> Result<u64, &'static str> {
    num(v).map_err(|_| "expected a whole number of milliseconds")
}

fn size(v: &str) -> Result<usize, &'static str> {
    num(v).map_err(|_| "expected a non-negative integer")
}

pub(super) fn boolean(v: &str) -> Result<bool, &'static str> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false"),
    }
}

/// `unlimited` (or `none`) → no cap; otherwise a positive integer (0 is rejected by validation).
pub(crate) fn limit(v: &str) -> Result<Option<u64>, &'static str> {
    match v.to_ascii_lowercase().as_str() {
        "unlimited" | "none" => Ok(None),
        _ => num(v).map(Some).map_err(|_| "expected a positive integer or \"unlimited\""),
    }
}
