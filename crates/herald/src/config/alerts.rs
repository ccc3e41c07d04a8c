//! The `[[alerts]]` tables: where alerts go (`crate::alerts`, docs/OPERATIONS.md "Alerts").
//!
//! ```toml
//! [[alerts]]
//! url = "https://hooks.slack.com/services/T000/B000/XXXX"   # http:// or https://
//! format = "slack"                                         # "slack" or "json"
//! events = ["quota_exceeded", "redis_down", "node_lost"]   # optional; default: every kind
//! ```
//! File only (no environment variable or flag). Every problem is a [`ConfigError::Invalid`]
//! naming the exact key (`alerts[1].events[0]: unknown alert event "quota"`).

use serde::Deserialize;

use super::ConfigError;
use crate::alerts::{AlertFormat, AlertKind, AlertKinds, AlertTarget};

/// One `[[alerts]]` table as written; everything optional so validation names what is missing.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileAlert {
    pub url: Option<String>,
    pub format: Option<String>,
    pub events: Option<Vec<String>>,
}

pub(super) fn resolve(file: Option<&[FileAlert]>) -> Result<Vec<AlertTarget>, ConfigError> {
    file.unwrap_or_default().iter().enumerate().map(|(i, a)| target(i, a)).collect()
}

fn target(i: usize, a: &FileAlert) -> Result<AlertTarget, ConfigError> {
    let key = |name: &str| format!("alerts[{i}].{name}");
    let Some(url) = a.url.clone() else { return Err(ConfigError::invalid(key("url"), "is required")) };
    // Kept in its normalised form (`HTTP://Host` → `http://host/`).
    let url = match url::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()) => u.to_string(),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            return Err(ConfigError::invalid(
                key("url"),
                format!("scheme {:?} is not supported (use http:// or https://)", u.scheme()),
            ))
        }
        // The URL itself is not repeated: a Slack webhook URL is a secret.
        Ok(_) => return Err(ConfigError::invalid(key("url"), "has no host")),
        Err(e) => return Err(ConfigError::invalid(key("url"), format!("is not a valid URL ({e})"))),
    };
    let format = match a.format.as_deref() {
        None => return Err(ConfigError::invalid(key("format"), "is required (\"slack\" or \"json\")")),
        Some(f) => AlertFormat::parse(f)
            .ok_or_else(|| ConfigError::invalid(key("format"), format!("must be \"slack\" or \"json\", got {f:?}")))?,
    };
    let events = match &a.events {
        None => AlertKinds::ALL,
        Some(names) if names.is_empty() => {
            return Err(ConfigError::invalid(
                key("events"),
                format!("must not be empty (leave it out for every kind; any of: {})", all_kinds()),
            ))
        }
        Some(names) => {
            let mut set = AlertKinds::NONE;
            for (j, name) in names.iter().enumerate() {
                let kind = AlertKind::parse(name).ok_or_else(|| {
                    ConfigError::invalid(
                        format!("alerts[{i}].events[{j}]"),
                        format!("unknown alert event {name:?} (any of: {})", all_kinds()),
                    )
                })?;
                set = set.with(kind);
            }
            set
        }
    };
    Ok(AlertTarget { url, format, events })
}

fn all_kinds() -> String {
    AlertKind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(url: Option<&str>, format: Option<&str>, events: Option<&[&str]>) -> FileAlert {
        FileAlert {
            url: url.map(str::to_owned),
            format: format.map(str::to_owned),
            events: events.map(|e| e.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn error(a: FileAlert) -> String {
        resolve(Some(&[alert(Some("http://ok.example/"), Some("json"), None), a])).unwrap_err().to_string()
    }

    #[test]
    fn every_problem_names_its_key() {
        assert_eq!(error(alert(None, Some("json"), None)), "alerts[1].url: is required");
        assert!(error(alert(Some("ftp://x/"), Some("json"), None)).starts_with("alerts[1].url: scheme \"ftp\""));
        assert!(error(alert(Some("not a url"), Some("json"), None)).starts_with("alerts[1].url: is not a valid URL"));
        assert!(error(alert(Some("http://x/"), None, None)).starts_with("alerts[1].format: is required"));
        assert!(error(alert(Some("http://x/"), Some("teams"), None)).starts_with("alerts[1].format: must be"));
        assert!(error(alert(Some("http://x/"), Some("slack"), Some(&[]))).starts_with("alerts[1].events: must not"));
        let e = error(alert(Some("http://x/"), Some("slack"), Some(&["redis_down", "quota"])));
        assert!(e.starts_with("alerts[1].events[1]: unknown alert event \"quota\" (any of: quota_warning,"), "{e}");
    }

    #[test]
    fn a_valid_table_resolves_with_its_filter() {
        let t = resolve(Some(&[alert(Some("https://h.example/x"), Some("slack"), Some(&["node_lost"]))])).unwrap();
        assert_eq!(t[0].format, AlertFormat::Slack);
        assert!(t[0].events.contains(AlertKind::NodeLost) && !t[0].events.contains(AlertKind::RedisDown));
        assert_eq!(resolve(None).unwrap(), vec![]);
    }
}
