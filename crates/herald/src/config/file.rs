//! The TOML file schema and the partial "layer" every source is turned into.
//!
//! Owns [`Layer`] (every top-level setting as an `Option`, so "not given" differs from "given
//! the default") and [`FileApp`] (one `[[apps]]` entry). The file, the environment and the
//! flags all produce a `Layer`; `mod.rs` stacks them in precedence order. Both structs use
//! `deny_unknown_fields` so a typo is an error naming the key and its line instead of a
//! silently ignored setting. `[[apps.webhooks]]` is [`FileWebhook`] (validated in
//! `webhooks.rs`). The `[adapter]`, `[app_store]`, `[tls]`, `[datadog]`, `[console]` and `[[alerts]]` sections
//! are resolved in their own modules (`adapter.rs`, `app_store.rs`, `tls.rs`, `datadog.rs`, `console.rs`, `alerts.rs`),
//! which also read their environment variables.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, LogFormat};

/// One source's view of the top-level settings. Field names are the TOML keys and the
/// `HERALD_<UPPERCASE>` environment variable names; see `herald.example.toml`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Layer {
    /// `[adapter]` (file only; env handled in `adapter.rs`).
    pub adapter: Option<super::adapter::FileAdapter>,
    /// `[app_store]` (file only; env handled in `app_store.rs`).
    pub app_store: Option<super::app_store::FileAppStore>,
    /// `[tls]` (file only; env and flags handled in `tls.rs`).
    pub tls: Option<super::tls::FileTls>,
    /// `[datadog]` (file only; env handled in `datadog.rs`).
    pub datadog: Option<super::datadog::FileDatadog>,
    /// `[console]` (file only; env handled in `console.rs`).
    pub console: Option<super::console::FileConsole>,
    /// `[[alerts]]` (file only; validated in `alerts.rs`).
    pub alerts: Option<Vec<super::alerts::FileAlert>>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path_prefix: Option<String>,
    pub activity_timeout: Option<u64>,
    pub pong_timeout: Option<u64>,
    pub authorized_connection_timeout: Option<u64>,
    pub max_ws_message_kb: Option<usize>,
    pub max_http_body_kb: Option<usize>,
    pub api_timestamp_tolerance: Option<u64>,
    pub strict_protocol_param: Option<bool>,
    /// Outer `None`: not given. `Some(None)`: explicitly unlimited (env/flag `unlimited`).
    /// In TOML the key is simply omitted for unlimited.
    #[serde(default, deserialize_with = "some_limit")]
    pub max_connections: Option<Option<u64>>,
    pub outbound_queue_messages: Option<usize>,
    pub outbound_queue_kb: Option<usize>,
    pub shutdown_grace: Option<u64>,
    pub shutdown_drain_window_ms: Option<u64>,
    pub listen_backlog: Option<u64>,
    pub cache_ttl: Option<u64>,
    pub subscription_count_threshold: Option<usize>,
    pub subscription_count_throttle: Option<u64>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub webhook_removal_delay_ms: Option<u64>,
    pub webhook_batch_ms: Option<u64>,
    pub webhook_batch_max: Option<usize>,
    pub webhook_retry_initial_ms: Option<u64>,
    pub webhook_retry_max_elapsed: Option<u64>,
    pub webhook_timeout: Option<u64>,
    pub webhook_queue_size: Option<usize>,
    pub webhook_max_pending: Option<u64>,
    pub webhook_dead_letters_max: Option<u64>,
    pub webhook_dead_letter_max_age: Option<u64>,
    pub webhook_cache_miss_dedup_max: Option<usize>,
    pub trusted_proxies: Option<Vec<String>>,
    pub http_header_read_timeout: Option<u64>,
    pub http_keep_alive_timeout: Option<u64>,
    pub http_body_read_timeout: Option<u64>,
    pub max_pending_connections: Option<usize>,
    pub ws_connect_rate_per_ip: Option<u64>,
    pub ws_connect_burst_per_ip: Option<u64>,
    pub fd_reserve: Option<usize>,
    pub metrics_port: Option<u16>,
    pub metrics_host: Option<String>,
    /// Only the file has an apps list; env and flags give [`Layer::single_app`] instead.
    pub apps: Option<Vec<FileApp>>,
    /// Env / flag credentials (never read from TOML: `skip`), as `(id, key, secret)`.
    #[serde(skip)]
    pub single_app: Option<(String, String, String)>,
}

fn some_limit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    u64::deserialize(d).map(|v| Some(Some(v)))
}

/// One `[[apps]]` table. Credentials are optional here so that a missing one is reported by
/// validation as `apps[N].secret: is required` rather than a bare serde message.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileApp {
    pub id: Option<String>,
    pub key: Option<String>,
    pub secret: Option<String>,
    pub enabled: Option<bool>,
    pub enable_client_messages: Option<bool>,
    pub max_connections: Option<u64>,
    pub max_presence_members_per_channel: Option<usize>,
    pub max_presence_member_size_in_kb: Option<usize>,
    pub max_event_payload_in_kb: Option<usize>,
    pub max_event_channels_at_once: Option<usize>,
    pub max_event_batch_size: Option<usize>,
    pub max_channel_name_length: Option<usize>,
    pub max_event_name_length: Option<usize>,
    pub max_user_id_length: Option<usize>,
    pub max_client_events_per_second: Option<u32>,
    pub require_authorized_connections: Option<bool>,
    pub enable_watchlist_events: Option<bool>,
    pub max_watchlist_size: Option<usize>,
    pub max_subscriptions_per_connection: Option<usize>,
    pub max_channels: Option<u64>,
    pub enable_subscription_count: Option<bool>,
    pub emit_subscription_error: Option<bool>,
    pub force_tls: Option<bool>,
    pub max_messages_per_day: Option<u64>,
    pub max_api_requests_per_second: Option<u64>,
    pub batch_webhooks: Option<bool>,
    pub webhook_max_pending: Option<u64>,
    pub webhook_dead_letters_max: Option<u64>,
    pub webhook_dead_letter_max_age: Option<u64>,
    pub webhooks: Option<Vec<FileWebhook>>,
}

/// One `[[apps.webhooks]]` table. Everything is optional here so that validation can name
/// the missing key (`apps[0].webhooks[1].url: is required`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileWebhook {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub filter: Option<FileWebhookFilter>,
    pub headers: Option<std::collections::BTreeMap<String, String>>,
}

/// `filter = { channel_name_starts_with = "...", channel_name_ends_with = "..." }`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileWebhookFilter {
    pub channel_name_starts_with: Option<String>,
    pub channel_name_ends_with: Option<String>,
}

/// Reads and parses a config file. A missing or unreadable file is an error naming the path.
pub(crate) fn read(path: &Path) -> Result<Layer, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile { path: path.to_path_buf(), source })?;
    parse(&text, path)
}

/// Parses TOML text; `path` is only used in error messages.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Layer, ConfigError> {
    toml::from_str::<Layer>(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0).min(text.len());
        let (line, column) = line_col(text, offset);
        ConfigError::Parse {
            path: path.to_path_buf(),
            key: key_path_at(text, offset),
            line,
            column,
            message: e.message().trim().replace('\n', " "),
        }
    })
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Best-effort dotted key path (`apps[1].foo`) for the error at `offset`: the bare key on the
/// error's line, prefixed by the enclosing `[table]` / `[[array]]` header (with the array
/// index counted from the headers above). Returns `None` when the line is not `key = ...`
/// (e.g. a syntax error or an inline table), in which case only the line/column is shown.
fn key_path_at(text: &str, offset: usize) -> Option<String> {
    let offset = floor_char_boundary(text, offset);
    let line_start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = text[offset..].find('\n').map(|i| offset + i).unwrap_or(text.len());
    let line = &text[line_start..line_end];
    let bare = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));

    // Table headers above the line: the last one, and how often each `[[array]]` was opened.
    let mut table: Option<String> = None;
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    for l in text[..line_start].lines() {
        match header(l) {
            Some((name, true)) => {
                // A nested array (`[[apps.webhooks]]`) is counted per parent element, so
                // its path is `apps[1].webhooks[0]`.
                let full = match name.split_once('.') {
                    Some((parent, rest)) if counts.get(parent).is_some_and(|&n| n > 0) => {
                        format!("{parent}[{}].{rest}", counts[parent] - 1)
                    }
                    _ => name.to_string(),
                };
                let n = counts.entry(full.clone()).or_insert(0);
                table = Some(format!("{full}[{n}]"));
                *n += 1;
            }
            Some((name, false)) => table = Some(name.to_string()),
            None => {}
        }
    }
    // `name` with its leading array-of-tables segment indexed: `apps.webhooks` → `apps[1].webhooks`.
    let indexed = |name: &str| -> String {
        match name.split_once('.') {
            Some((parent, rest)) if counts.get(parent).is_some_and(|&n| n > 0) => {
                format!("{parent}[{}].{rest}", counts[parent] - 1)
            }
            _ => name.to_string(),
        }
    };

    // The error is on a header line itself (e.g. an unknown `[apps.webhooks]` section).
    if let Some((name, _)) = header(line) {
        return bare(name).then(|| indexed(name));
    }
    let (lhs, _) = line.split_once('=')?;
    let key = lhs.trim().trim_matches('"');
    if !bare(key) {
        return None;
    }
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

/// `Some((name, is_array))` if `line` is a `[name]` or `[[name]]` table header.
fn header(line: &str) -> Option<(&str, bool)> {
    let l = line.trim();
    let l = l.split_once('#').map(|(a, _)| a.trim()).unwrap_or(l);
    if let Some(name) = l.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
        Some((name.trim(), true))
    } else {
        l.strip_prefix('[').and_then(|r| r.strip_suffix(']')).map(|name| (name.trim(), false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_path_names_array_index() {
        let text = "port = 1\n[[apps]]\nid = \"a\"\n[[apps]]\nid = \"b\"\nbogus = 1\n";
        let err = parse(text, Path::new("x.toml")).unwrap_err().to_string();
        assert!(err.starts_with("apps[1].bogus: unknown field `bogus`"), "{err}");
        assert!(err.contains("line 6, column 1"), "{err}");
    }

    #[test]
    fn unknown_sub_table_names_its_app() {
        let text = "[[apps]]\nid = \"a\"\n[[apps]]\nid = \"b\"\n[apps.bogus]\nurl = \"x\"\n";
        let err = parse(text, Path::new("x.toml")).unwrap_err().to_string();
        assert!(err.starts_with("apps[1].bogus: unknown field"), "{err}");
    }

    #[test]
    fn nested_array_key_path_counts_per_parent() {
        let text = "[[apps]]\nid = \"a\"\n[[apps.webhooks]]\nurl = \"x\"\n[[apps]]\nid = \"b\"\n[[apps.webhooks]]\nbogus = 1\n";
        let err = parse(text, Path::new("x.toml")).unwrap_err().to_string();
        assert!(err.starts_with("apps[1].webhooks[0].bogus: unknown field"), "{err}");
    }

    #[test]
    fn type_error_names_top_level_key() {
        let err = parse("port = \"abc\"\n", Path::new("x.toml")).unwrap_err().to_string();
        assert!(err.starts_with("port: "), "{err}");
    }
}
