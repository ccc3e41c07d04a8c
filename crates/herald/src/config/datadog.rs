//! The `[datadog]` table: where herald sends its metrics in the DogStatsD format (UDP), next to
//! the Prometheus `/metrics` endpoint, which stays on.
//!
//! ```toml
//! [datadog]
//! statsd_addr = "127.0.0.1:8125"   # host:port of the Datadog Agent's DogStatsD (required to enable)
//! prefix = "herald"                # metric names become "<prefix>.<name>"; default "herald"
//! tags = ["env:prod", "region:eu"] # key:value tags added to every metric
//! interval = 10                    # seconds between flushes; default 10
//! ```
//! Env `HERALD_DATADOG_STATSD_ADDR`, `HERALD_DATADOG_PREFIX`, `HERALD_DATADOG_TAGS`
//! (comma-separated) and `HERALD_DATADOG_INTERVAL`; each key is layered on its own (file < env).
//! Without `statsd_addr` from either source nothing is sent, and a `[datadog]` table or a variable
//! that sets another key without it is an error naming `datadog.statsd_addr`.
//!
//! This module only resolves and validates the values; `crate::datadog` builds the exporter.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// The environment variables of this table.
pub(crate) const DATADOG_VARS: [&str; 4] =
    ["HERALD_DATADOG_STATSD_ADDR", "HERALD_DATADOG_PREFIX", "HERALD_DATADOG_TAGS", "HERALD_DATADOG_INTERVAL"];

/// `[datadog]` as written in the file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileDatadog {
    pub statsd_addr: Option<String>,
    pub prefix: Option<String>,
    pub tags: Option<Vec<String>>,
    pub interval: Option<u64>,
}

/// The resolved `[datadog]` table: herald sends DogStatsD lines to `statsd_addr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatadogConfig {
    /// `host:port` of the DogStatsD server (`datadog.statsd_addr`).
    pub statsd_addr: String,
    /// Metric name prefix, without the trailing dot (`datadog.prefix`). Default `herald`.
    pub prefix: String,
    /// `(key, value)` tags added to every metric (`datadog.tags`, written `key:value`).
    pub tags: Vec<(String, String)>,
    /// Time between flushes (`datadog.interval`). Default 10 s, 1..=3600 s.
    pub interval: Duration,
}

/// Layers the four keys (file < env) and validates them; `None` when `statsd_addr` is unset
/// everywhere and nothing else of the table is given.
pub(super) fn resolve(
    file: Option<&FileDatadog>,
    env: &HashMap<String, String>,
) -> Result<Option<DatadogConfig>, ConfigError> {
    let table_given = file.is_some();
    let file = file.cloned().unwrap_or_default();
    let var = |name: &str| env.get(name).cloned();
    let addr = var(DATADOG_VARS[0]).or(file.statsd_addr);
    let prefix = var(DATADOG_VARS[1]).or(file.prefix);
    let tags = match var(DATADOG_VARS[2]) {
        Some(list) => Some(list.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect()),
        None => file.tags,
    };
    let interval = match var(DATADOG_VARS[3]) {
        Some(v) => Some(v.trim().parse::<u64>().map_err(|_| ConfigError::InvalidValue {
            key: "datadog.interval".into(),
            value: v.clone(),
            source_name: DATADOG_VARS[3].into(),
            reason: "expected a whole number of seconds".into(),
        })?),
        None => file.interval,
    };
    let invalid = |key: &str, reason: String| ConfigError::invalid(key, reason);
    let Some(statsd_addr) = addr else {
        if table_given || prefix.is_some() || tags.is_some() || interval.is_some() {
            return Err(invalid(
                "datadog.statsd_addr",
                "missing; the other [datadog] keys need it (host:port of DogStatsD, also HERALD_DATADOG_STATSD_ADDR)"
                    .into(),
            ));
        }
        return Ok(None);
    };
    let statsd_addr = statsd_addr.trim().to_owned();
    let port_ok = statsd_addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0));
    if !port_ok || statsd_addr.contains(char::is_whitespace) {
        return Err(invalid(
            "datadog.statsd_addr",
            format!("expected host:port (e.g. 127.0.0.1:8125), got {statsd_addr:?}"),
        ));
    }
    let prefix = prefix.unwrap_or_else(|| "herald".to_owned());
    let prefix_ok = prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !prefix.starts_with('.')
        && !prefix.ends_with('.');
    if !prefix_ok {
        return Err(invalid(
            "datadog.prefix",
            format!("may hold only letters, digits, '_' and inner '.', got {prefix:?} (empty: no prefix)"),
        ));
    }
    let tags = tags.unwrap_or_default().iter().map(|t| tag(t)).collect::<Result<Vec<_>, _>>()?;
    let interval = interval.unwrap_or(10);
    if !(1..=3600).contains(&interval) {
        return Err(invalid("datadog.interval", format!("must be 1..=3600 seconds, got {interval}")));
    }
    Ok(Some(DatadogConfig { statsd_addr, prefix, tags, interval: Duration::from_secs(interval) }))
}

/// One `key:value` tag. DogStatsD separates tags with `,` and fields with `|`, so neither may
/// appear; the key must be non-empty and start with a letter (Datadog's rule for tag keys).
fn tag(raw: &str) -> Result<(String, String), ConfigError> {
    let bad = |why: &str| ConfigError::invalid("datadog.tags", format!("{raw:?}: {why}"));
    let (key, value) = raw.trim().split_once(':').ok_or_else(|| bad("expected key:value"))?;
    if !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(bad("the key must start with a letter"));
    }
    if value.is_empty() {
        return Err(bad("the value is empty"));
    }
    if raw.contains([',', '|', '#', '\n']) || raw.trim().contains(char::is_whitespace) {
        return Err(bad("tags may not contain ',', '|', '#' or whitespace"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn err(file: Option<&FileDatadog>, e: &[(&str, &str)]) -> String {
        resolve(file, &env(e)).unwrap_err().to_string()
    }

    #[test]
    fn nothing_set_sends_nothing() {
        assert_eq!(resolve(None, &env(&[])).unwrap(), None);
    }

    #[test]
    fn defaults_apply_and_env_overrides_the_file_key_by_key() {
        let file = FileDatadog {
            statsd_addr: Some("agent:8125".into()),
            tags: Some(vec!["env:prod".into(), "team:rt".into()]),
            ..FileDatadog::default()
        };
        let dd = resolve(Some(&file), &env(&[])).unwrap().unwrap();
        assert_eq!(dd.prefix, "herald");
        assert_eq!(dd.interval, Duration::from_secs(10));
        assert_eq!(dd.tags, vec![("env".into(), "prod".into()), ("team".into(), "rt".into())]);
        let e = env(&[("HERALD_DATADOG_TAGS", "env:test, a:b"), ("HERALD_DATADOG_INTERVAL", "2")]);
        let dd = resolve(Some(&file), &e).unwrap().unwrap();
        assert_eq!(dd.statsd_addr, "agent:8125");
        assert_eq!(dd.tags, vec![("env".into(), "test".into()), ("a".into(), "b".into())]);
        assert_eq!(dd.interval, Duration::from_secs(2));
    }

    #[test]
    fn other_keys_without_an_address_name_statsd_addr() {
        let e = err(Some(&FileDatadog::default()), &[]);
        assert!(e.starts_with("datadog.statsd_addr: missing"), "{e}");
        let e = err(None, &[("HERALD_DATADOG_PREFIX", "x")]);
        assert!(e.starts_with("datadog.statsd_addr: missing"), "{e}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let addr = |a: &str| err(None, &[("HERALD_DATADOG_STATSD_ADDR", a)]);
        for bad in ["127.0.0.1", ":8125", "host:0", "host:port", "a b:1"] {
            assert!(addr(bad).starts_with("datadog.statsd_addr:"), "{bad}: {}", addr(bad));
        }
        let with = |k: &str, v: &str| err(None, &[("HERALD_DATADOG_STATSD_ADDR", "h:1"), (k, v)]);
        for bad in ["env", "1x:y", "env:", "a:b|c", "a:b c", ":v"] {
            let e = with("HERALD_DATADOG_TAGS", bad);
            assert!(e.starts_with("datadog.tags:"), "{bad}: {e}");
        }
        assert!(with("HERALD_DATADOG_PREFIX", "a-b").starts_with("datadog.prefix:"));
        assert!(with("HERALD_DATADOG_PREFIX", "a.").starts_with("datadog.prefix:"));
        assert!(with("HERALD_DATADOG_INTERVAL", "0").starts_with("datadog.interval:"));
        assert!(with("HERALD_DATADOG_INTERVAL", "x").starts_with("datadog.interval:"));
    }

    #[test]
    fn an_empty_prefix_means_no_prefix() {
        let e = env(&[("HERALD_DATADOG_STATSD_ADDR", "[::1]:8125"), ("HERALD_DATADOG_PREFIX", "")]);
        assert_eq!(resolve(None, &e).unwrap().unwrap().prefix, "");
    }
}
