//! What an alert is: its kind ([`AlertKind`], the `event` of both payload formats and the
//! names `[[alerts]].events` accepts), its [`Severity`], and the [`Alert`] value handed to
//! `Alerts::emit`. Owns the kind names, so the config validation and the payloads agree.

use serde_json::{Map, Value};

/// The kinds of alert herald sends. The name (`quota_warning`, …) is the JSON payload's
/// `event`, the `event` label of `herald_alerts_sent_total` and what `[[alerts]].events` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// An app used the warning share of a quota (once per app, quota and 24 h, per cluster).
    QuotaWarning,
    /// An app reached a quota (once per app, quota and 24 h, per cluster).
    QuotaExceeded,
    /// Webhook deliveries of an app were dead-lettered (at most one per app per 10 s, with the count).
    WebhookDeadLetter,
    /// This node lost its Redis connection (per node).
    RedisDown,
    /// This node reached Redis again (per node).
    RedisRestored,
    /// A node stopped heartbeating and its state was removed (once per cluster: the reaper sends it).
    NodeLost,
    /// A SIGHUP reload read a configuration that does not validate (the running one stays).
    ConfigReloadFailed,
}

impl AlertKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [AlertKind; 7] = [
        AlertKind::QuotaWarning,
        AlertKind::QuotaExceeded,
        AlertKind::WebhookDeadLetter,
        AlertKind::RedisDown,
        AlertKind::RedisRestored,
        AlertKind::NodeLost,
        AlertKind::ConfigReloadFailed,
    ];

    /// The kind's name.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::QuotaWarning => "quota_warning",
            AlertKind::QuotaExceeded => "quota_exceeded",
            AlertKind::WebhookDeadLetter => "webhook_dead_letter",
            AlertKind::RedisDown => "redis_down",
            AlertKind::RedisRestored => "redis_restored",
            AlertKind::NodeLost => "node_lost",
            AlertKind::ConfigReloadFailed => "config_reload_failed",
        }
    }

    /// The kind named `name`, if any.
    pub fn parse(name: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// A short human title (the first words of the Slack message).
    pub(crate) fn title(self) -> &'static str {
        match self {
            AlertKind::QuotaWarning => "Quota warning",
            AlertKind::QuotaExceeded => "Quota exceeded",
            AlertKind::WebhookDeadLetter => "Webhooks dead-lettered",
            AlertKind::RedisDown => "Redis unreachable",
            AlertKind::RedisRestored => "Redis reachable again",
            AlertKind::NodeLost => "Node lost",
            AlertKind::ConfigReloadFailed => "Config reload failed",
        }
    }

    /// The severity every alert of this kind has.
    pub fn severity(self) -> Severity {
        match self {
            AlertKind::QuotaExceeded | AlertKind::RedisDown => Severity::Critical,
            AlertKind::RedisRestored => Severity::Info,
            _ => Severity::Warning,
        }
    }

    /// Position in [`AlertKind::ALL`] (a bit of an [`AlertKinds`] set).
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of [`AlertKind`]s (a target's `events` filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertKinds(u8);

impl AlertKinds {
    /// Every kind (a target without `events`).
    pub const ALL: AlertKinds = AlertKinds(0x7f);

    /// The empty set.
    pub const NONE: AlertKinds = AlertKinds(0);

    /// `self` with `kind` added.
    pub fn with(self, kind: AlertKind) -> AlertKinds {
        AlertKinds(self.0 | kind.bit())
    }

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: AlertKind) -> bool {
        self.0 & kind.bit() != 0
    }
}

impl FromIterator<AlertKind> for AlertKinds {
    fn from_iter<I: IntoIterator<Item = AlertKind>>(iter: I) -> Self {
        iter.into_iter().fold(AlertKinds::NONE, AlertKinds::with)
    }
}

/// How urgent an alert is (`severity` in both formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One alert: what happened, to which app (if any), a one-line message and structured details.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub kind: AlertKind,
    /// The app concerned; `None` for node- and cluster-wide alerts.
    pub app_id: Option<String>,
    /// One line for humans.
    pub message: String,
    /// Machine-readable facts (counts, limits, the error), the JSON payload's `details`.
    pub details: Map<String, Value>,
}

impl Alert {
    /// An alert of `kind` with `message` and no app or details.
    pub fn new(kind: AlertKind, message: impl Into<String>) -> Alert {
        Alert { kind, app_id: None, message: message.into(), details: Map::new() }
    }

    /// The same alert about `app_id`.
    pub fn app(mut self, app_id: &str) -> Alert {
        self.app_id = Some(app_id.to_owned());
        self
    }

    /// The same alert with `key` = `value` in its details.
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Alert {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_full_set_holds_every_kind() {
        for kind in AlertKind::ALL {
            assert_eq!(AlertKind::parse(kind.name()), Some(kind));
            assert!(AlertKinds::ALL.contains(kind));
            assert!(!AlertKinds::NONE.contains(kind));
        }
        assert_eq!(AlertKind::parse("quota"), None);
        let set: AlertKinds = [AlertKind::RedisDown].into_iter().collect();
        assert!(set.contains(AlertKind::RedisDown) && !set.contains(AlertKind::RedisRestored));
    }
}
