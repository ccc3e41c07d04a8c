//! Validation of the per-app webhook keys (`batch_webhooks`, the per-app overrides of the
//! webhook caps `webhook_max_pending` / `webhook_dead_letters_max` /
//! `webhook_dead_letter_max_age`, and `[[apps.webhooks]]`).
//!
//! Owns the conversion of the file's [`FileWebhook`] tables into [`AppWebhooks`]. Every
//! problem is a [`ConfigError::Invalid`] naming the exact key, e.g.
//! `apps[0].webhooks[1].event_types[2]: unknown webhook event type "joined"`.

use herald_core::events::{EventKind, EventKinds};

use crate::webhooks::config::{AppWebhooks, ChannelFilter, WebhookTarget};

use super::file::{FileApp, FileWebhook};
use super::ConfigError;

/// Validates one app's webhook keys. `app` is the key prefix, e.g. `apps[0]`.
pub(crate) fn app_webhooks(app: &str, fa: &FileApp) -> Result<AppWebhooks, ConfigError> {
    let mut targets = Vec::new();
    for (i, w) in fa.webhooks.clone().unwrap_or_default().into_iter().enumerate() {
        let key = |name: &str| format!("{app}.webhooks[{i}].{name}");
        targets.push(target(w, key)?);
    }
    // (key, value, the largest value it accepts): the same bounds as the node-wide keys.
    let caps = [
        ("webhook_max_pending", fa.webhook_max_pending, 10_000_000),
        ("webhook_dead_letters_max", fa.webhook_dead_letters_max, 1_000_000),
        ("webhook_dead_letter_max_age", fa.webhook_dead_letter_max_age, 31_536_000),
    ];
    for (key, v, max) in caps {
        match v {
            Some(v) if v > max => {
                return Err(ConfigError::invalid(format!("{app}.{key}"), format!("must be at most {max}, got {v}")))
            }
            Some(0) => return Err(ConfigError::invalid(format!("{app}.{key}"), "must be greater than 0")),
            _ => {}
        }
    }
    Ok(AppWebhooks {
        batch: fa.batch_webhooks.unwrap_or(false),
        targets,
        max_pending: fa.webhook_max_pending,
        dead_letters_max: fa.webhook_dead_letters_max,
        dead_letter_max_age: fa.webhook_dead_letter_max_age,
    })
}

fn target(w: FileWebhook, key: impl Fn(&str) -> String) -> Result<WebhookTarget, ConfigError> {
    let url = match w.url {
        None => return Err(ConfigError::invalid(key("url"), "is required")),
        Some(u) => u,
    };
    match url::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()) => {}
        Ok(u) => {
            return Err(ConfigError::invalid(
                key("url"),
                format!("invalid value {url:?}: scheme {:?} is not supported (use http:// or https://)", u.scheme()),
            ))
        }
        Err(e) => return Err(ConfigError::invalid(key("url"), format!("invalid URL {url:?}: {e}"))),
    }

    let names = match w.event_types {
        None => {
            return Err(ConfigError::invalid(
                key("event_types"),
                format!("is required (any of: {})", all_event_types()),
            ))
        }
        Some(n) if n.is_empty() => {
            return Err(ConfigError::invalid(
                key("event_types"),
                format!("must not be empty (any of: {})", all_event_types()),
            ))
        }
        Some(n) => n,
    };
    let mut event_types = EventKinds::NONE;
    for (j, name) in names.iter().enumerate() {
        let Some(kind) = EventKind::parse(name) else {
            return Err(ConfigError::invalid(
                format!("{}[{j}]", key("event_types")),
                format!("unknown webhook event type {name:?} (expected one of: {})", all_event_types()),
            ));
        };
        event_types.insert(kind);
    }

    let filter = match w.filter {
        None => ChannelFilter::default(),
        Some(f) => {
            for (name, v) in [
                ("channel_name_starts_with", &f.channel_name_starts_with),
                ("channel_name_ends_with", &f.channel_name_ends_with),
            ] {
                if v.as_deref() == Some("") {
                    return Err(ConfigError::invalid(
                        format!("{}.{name}", key("filter")),
                        "must not be empty (omit it to match every channel)",
                    ));
                }
            }
            ChannelFilter { starts_with: f.channel_name_starts_with, ends_with: f.channel_name_ends_with }
        }
    };

    let mut headers = Vec::new();
    for (name, value) in w.headers.unwrap_or_default() {
        let hkey = format!("{}.{name:?}", key("headers"));
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ConfigError::invalid(hkey, "is not a valid HTTP header name"));
        }
        let lower = name.to_ascii_lowercase();
        if matches!(lower.as_str(), "content-type" | "content-length" | "x-pusher-key" | "x-pusher-signature" | "host")
        {
            return Err(ConfigError::invalid(hkey, "is set by herald and cannot be overridden"));
        }
        if reqwest::header::HeaderValue::from_str(&value).is_err() {
            return Err(ConfigError::invalid(hkey, format!("invalid header value {value:?}")));
        }
        headers.push((name, value));
    }
    Ok(WebhookTarget { url, event_types, filter, headers })
}

/// Every webhook event type, for error messages: `channel_occupied, channel_vacated, …`.
fn all_event_types() -> String {
    EventKind::ALL.map(EventKind::name).join(", ")
}
