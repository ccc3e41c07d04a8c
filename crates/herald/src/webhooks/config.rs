//! The resolved webhook configuration: per-app targets and the node-wide delivery settings.
//!
//! Owns the plain value types the config loader produces ([`AppWebhooks`], [`WebhookTarget`],
//! [`ChannelFilter`]) and [`WebhookSettings`], the tunables read by the dispatcher and the
//! delivery workers. Event types are the core's [`EventKind`] / [`EventKinds`]. Parsing and validation of the TOML keys live in
//! `config/webhooks.rs`; this file only says what a valid configuration looks like.

use std::time::Duration;

use herald_core::events::{EventKind, EventKinds};

use crate::config::Config;

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
    pub event_types: EventKinds,
    pub filter: ChannelFilter,
    /// Extra request headers, sent after the Pusher ones (names and values validated).
    pub headers: Vec<(String, String)>,
}

impl WebhookTarget {
    /// Whether this target receives an event of `kind` on `channel`.
    pub fn accepts(&self, kind: EventKind, channel: &str) -> bool {
        self.event_types.contains(kind) && self.filter.matches(channel)
    }
}

/// One app's webhook configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppWebhooks {
    /// `batch_webhooks`: several events per request (within `webhook_batch_ms`).
    pub batch: bool,
    pub targets: Vec<WebhookTarget>,
    /// `apps[].webhook_max_pending`: overrides the node's `webhook_max_pending`.
    pub max_pending: Option<u64>,
    /// `apps[].webhook_dead_letters_max`: overrides the node's `webhook_dead_letters_max`.
    pub dead_letters_max: Option<u64>,
    /// `apps[].webhook_dead_letter_max_age` (seconds): overrides the node's key.
    pub dead_letter_max_age: Option<u64>,
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
    /// `webhook_queue_size`: events buffered per app between the hot path and the dispatcher.
    pub queue_size: usize,
    /// `webhook_max_pending`: deliveries per app the outbox holds at most.
    pub max_pending: u64,
    /// `webhook_dead_letters_max`: dead letters kept per app at most.
    pub dead_letters_max: u64,
    /// `webhook_dead_letter_max_age`: dead letters older than this are pruned.
    pub dead_letter_max_age: Duration,
    /// `webhook_cache_miss_dedup_max`: channels per app the cache_miss de-duplication holds.
    pub cache_miss_dedup_max: usize,
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
            max_pending: c.webhook_max_pending,
            dead_letters_max: c.webhook_dead_letters_max,
            dead_letter_max_age: Duration::from_secs(c.webhook_dead_letter_max_age),
            cache_miss_dedup_max: c.webhook_cache_miss_dedup_max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_accepts_only_its_event_types_on_matching_channels() {
        let target = WebhookTarget {
            url: "http://hooks.test/".to_owned(),
            event_types: EventKinds::of(&[EventKind::MemberAdded]),
            filter: ChannelFilter { starts_with: Some("presence-".into()), ends_with: None },
            headers: Vec::new(),
        };
        assert!(target.accepts(EventKind::MemberAdded, "presence-room"));
        assert!(!target.accepts(EventKind::MemberRemoved, "presence-room"));
        assert!(!target.accepts(EventKind::MemberAdded, "private-room"));
    }

    #[test]
    fn filter_matches_both_ends_when_both_are_set() {
        let f = ChannelFilter { starts_with: Some("presence-".into()), ends_with: Some("-x".into()) };
        assert!(f.matches("presence-a-x"));
        assert!(!f.matches("presence-a") && !f.matches("private-a-x"));
        assert!(ChannelFilter::default().matches("anything"));
    }
}
