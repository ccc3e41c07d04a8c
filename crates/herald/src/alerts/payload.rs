//! The two alert body formats (docs/OPERATIONS.md, "Alerts", shows both):
//!
//! * `json`: herald's own object, `{"event", "severity", "app_id", "message", "details",
//!   "node", "timestamp"}` (`app_id` is `null` for node- and cluster-wide alerts,
//!   `timestamp` is RFC 3339 in UTC);
//! * `slack`: a Slack incoming-webhook message: `text` (the notification fallback) and Block
//!   Kit `blocks`: a `section` with `mrkdwn` text (title, app, message) and a `context` with
//!   the node, the severity and the time. Text from outside (messages, app ids, errors) is
//!   escaped as Slack asks (`&`, `<`, `>`), so it can never form a link or a mention, and
//!   clipped to fit a section (Slack refuses a longer one).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::kind::{Alert, Severity};

/// A target's body format (`[[alerts]].format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertFormat {
    /// A Slack incoming-webhook payload (`text` + `blocks`).
    Slack,
    /// herald's JSON object.
    Json,
}

impl AlertFormat {
    pub fn parse(name: &str) -> Option<AlertFormat> {
        match name {
            "slack" => Some(AlertFormat::Slack),
            "json" => Some(AlertFormat::Json),
            _ => None,
        }
    }
}

/// Where and when an alert was raised (the same for every target it goes to).
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// The host name and the node id, e.g. `web-3 (node 1234)`.
    pub node: String,
    /// Seconds since the Unix epoch.
    pub unix_secs: u64,
}

impl Origin {
    pub(crate) fn now(node: &str) -> Origin {
        let unix_secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        Origin { node: node.to_owned(), unix_secs }
    }
}

/// The body of `alert` in `format`.
pub(crate) fn body(format: AlertFormat, alert: &Alert, origin: &Origin) -> String {
    let value = match format {
        AlertFormat::Json => json_body(alert, origin),
        AlertFormat::Slack => slack_body(alert, origin),
    };
    value.to_string()
}

fn json_body(alert: &Alert, origin: &Origin) -> Value {
    json!({
        "event": alert.kind.name(),
        "severity": alert.kind.severity().name(),
        "app_id": alert.app_id,
        "message": alert.message,
        "details": alert.details,
        "node": origin.node,
        "timestamp": rfc3339(origin.unix_secs),
    })
}

fn slack_body(alert: &Alert, origin: &Origin) -> Value {
    let kind = alert.kind;
    let icon = match kind.severity() {
        Severity::Info => ":white_check_mark:",
        Severity::Warning => ":warning:",
        Severity::Critical => ":rotating_light:",
    };
    let app = alert.app_id.as_deref().map(|a| format!(" (app `{}`)", escape(a))).unwrap_or_default();
    let fallback_app = alert.app_id.as_deref().map(|a| format!(" (app {a})")).unwrap_or_default();
    let section = format!("{icon} *{}*{app}\n{}", kind.title(), clip(&escape(&alert.message), MESSAGE_MAX));
    let context = format!(
        "herald `{}` · node {} · {} · {}",
        kind.name(),
        escape(&origin.node),
        kind.severity().name(),
        rfc3339(origin.unix_secs)
    );
    json!({
        "text": clip(&escape(&format!("[herald] {}{fallback_app}: {}", kind.title(), alert.message)), MESSAGE_MAX),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": section}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    })
}

/// The longest message put in a Slack block (a section's text may hold 3,000 characters; Slack
/// refuses the whole message above that, which would only be retried in vain).
const MESSAGE_MAX: usize = 2_500;

/// `s` cut to at most `max` characters, with `…` when cut.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

/// Slack's required escaping of `&`, `<` and `>` in message text.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `secs` since the epoch as RFC 3339 in UTC (`2026-12-05T03:44:00Z`).
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::kind::AlertKind;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_528_640), "2026-12-06T03:44:00Z");
    }

    #[test]
    fn a_long_message_is_clipped_to_fit_a_slack_section() {
        let alert = Alert::new(AlertKind::ConfigReloadFailed, "é".repeat(5_000));
        let body: Value = serde_json::from_str(&body(AlertFormat::Slack, &alert, &Origin::now("n"))).unwrap();
        let section = body["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(section.chars().count() < 3_000, "{}", section.chars().count());
        assert!(section.ends_with('…'));
    }

    #[test]
    fn slack_text_is_escaped_so_it_cannot_mention_or_link() {
        let alert = Alert::new(AlertKind::ConfigReloadFailed, "bad <!channel> & <http://x|y>");
        let body: Value = serde_json::from_str(&body(AlertFormat::Slack, &alert, &Origin::now("n"))).unwrap();
        let section = body["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(section.contains("bad &lt;!channel&gt; &amp; &lt;http://x|y&gt;"), "{section}");
        assert!(!body["text"].as_str().unwrap().contains('<'));
    }
}
