//! The resolved webhook configuration: per-app targets and the node-wide delivery settings.
//!
//! Owns the plain value types the config loader produces ([`AppWebhooks`], [`WebhookTarget`],
//! [`EventMask`], [`ChannelFilter`]) and [`WebhookSettings`], the tunables read by the
//! dispatcher and the delivery workers. Parsing and validation of the TOML keys live in
//! `config/webhooks.rs`; this file only says what a valid configuration looks like.

use std::time::Duration;

use crate::config::Config;

/// The webhook event names (PROTOCOL.md 11.1), in bit order of [`EventMask`].
pub const EVENT_NAMES: [&str; 7] = [
    "channel_occupied",
    "channel_vacated",
    "member_added",
    "member_removed",
    "client_event",
    "cache_miss",
    "subscription_count",
];

/// A set of webhook event names, one bit per entry of [`EVENT_NAMES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventMask(u8);

impl EventMask {
    /// The bit of `name`, if it is a webhook event name.
    fn bit(name: &str) -> Option<u8> {
        EVENT_NAMES.iter().position(|n| *n == name).map(|i| 1u8 << i)
    }

    /// Adds `name`; false if it is not a webhook event name.
    pub fn insert(&mut self, name: &str) -> bool {
        match Self::bit(name) {
            Some(b) => {
                self.0 |= b;
                true
            }
            None => false,
        }
    }

    pub fn contains(self, name: &str) -> bool {
        Self::bit(name).is_some_and(|b| self.0 & b != 0)
    }

    pub fn union(self, other: EventMask) -> EventMask {
        EventMask(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names in the set, in [`EVENT_NAMES`] order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        EVENT_NAMES.iter().enumerate().filter(move |(i, _)| self.0 & (1 << i) != 0).map(|(_, n)| *n)
    }
}

/// Optional channel-name filter of a target; both parts must match when both are set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelFilter {
    pub starts_with: Option<String>,
    pub ends_with: Option<String>,
}

impl ChannelFilter {
    pub fn matches(&self, channel: &str) -> bool {
        self.starts_with.as_deref().is_none_or(|p| channel.starts_with(p))
            && self.ends_with.as_deref().is_none_or(|s| channel.ends_with(s))
    }
}

/// One `[[apps.webhooks]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// An `http://` or `https://` URL (validated).
    pub url: String,
    /// Never empty.
    pub event_types: EventMask,
    pub filter: ChannelFilter,
    /// Extra request headers, sent after the Pusher ones (names and values validated).
    pub headers: Vec<(String, String)>,
}

impl WebhookTarget {
    /// Whether this target receives an event called `name` on `channel`.
    pub fn accepts(&self, name: &str, channel: &str) -> bool {
        self.event_types.contains(name) && self.filter.matches(channel)
    }
}

/// One app's webhook configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppWebhooks {
    /// `batch_webhooks`: several events per request (within `webhook_batch_ms`).
    pub batch: bool,
    pub targets: Vec<WebhookTarget>,
}

/// Node-wide webhook tunables (top-level config keys `webhook_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// `webhook_removal_delay_ms`: how long channel_vacated / member_removed are held back.
    pub removal_delay: Duration,
    /// `webhook_batch_ms`: how long a batch collects events before it is sent.
    pub batch_window: Duration,
    /// `webhook_batch_max`: events per batched request.
    pub batch_max: usize,
    /// `webhook_retry_initial_ms`: first retry delay (doubles, capped at 60 s).
    pub retry_initial: Duration,
    /// `webhook_retry_max_elapsed`: how long a delivery is retried before it is dead-lettered.
    pub retry_max_elapsed: Duration,
    /// `webhook_timeout`: per-request timeout.
    pub timeout: Duration,
    /// `webhook_queue_size`: events buffered between the hot path and the dispatcher.
    pub queue_size: usize,
}

impl WebhookSettings {
    pub fn from_config(c: &Config) -> Self {
        WebhookSettings {
            removal_delay: Duration::from_millis(c.webhook_removal_delay_ms),
            batch_window: Duration::from_millis(c.webhook_batch_ms),
            batch_max: c.webhook_batch_max,
            retry_initial: Duration::from_millis(c.webhook_retry_initial_ms),
            retry_max_elapsed: Duration::from_secs(c.webhook_retry_max_elapsed),
            timeout: Duration::from_secs(c.webhook_timeout),
            queue_size: c.webhook_queue_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_and_filter() {
        let mut m = EventMask::default();
        assert!(m.insert("member_added"));
        assert!(!m.insert("nope"));
        assert!(m.contains("member_added") && !m.contains("channel_vacated"));
        assert_eq!(m.names().collect::<Vec<_>>(), ["member_added"]);
        let f = ChannelFilter { starts_with: Some("presence-".into()), ends_with: Some("-x".into()) };
        assert!(f.matches("presence-a-x"));
        assert!(!f.matches("presence-a") && !f.matches("private-a-x"));
        assert!(ChannelFilter::default().matches("anything"));
    }
}
