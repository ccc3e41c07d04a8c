//! Alerts (`[[alerts]]`) delivered to local HTTP receivers: the Slack and JSON payloads, the
//! `events` filter, retries of a failing receiver, a hanging receiver that delays no other
//! target, a stuck target's full queue dropping (counted), quota alerts sent once per app,
//! quota and level, dead-lettered webhooks aggregated into one alert per app and interval, and
//! `config_reload_failed` from a bad SIGHUP reload of the real binary.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::time::Duration;

use herald::alerts::{AlertFormat, AlertKind, AlertKinds, AlertTarget, QuotaKind, QuotaLevel};
use serde_json::Value;
use support::*;

fn target(receiver: &WebhookReceiver, format: AlertFormat, events: &[AlertKind]) -> AlertTarget {
    let events = if events.is_empty() { AlertKinds::ALL } else { events.iter().copied().collect() };
    AlertTarget { url: receiver.url(), format, events }
}

async fn server_with(targets: Vec<AlertTarget>) -> TestServer {
    let mut config = test_config();
    config.alerts = targets;
    start_with(config).await
}

/// Waits until `receiver` got `n` successful requests; returns their bodies as JSON.
async fn wait_alerts(receiver: &WebhookReceiver, n: usize, within: Duration) -> Vec<Value> {
    let ok = eventually(within, || receiver.delivered().len() >= n).await;
    let got: Vec<Value> = receiver.delivered().iter().map(|h| h.json()).collect();
    assert!(ok, "expected {n} alerts within {within:?}, got {got:#?}");
    got
}

#[tokio::test]
async fn a_slack_target_gets_text_and_a_mrkdwn_section_and_a_json_target_gets_every_field() {
    let (slack, json) = (WebhookReceiver::start().await, WebhookReceiver::start().await);
    let s = server_with(vec![target(&slack, AlertFormat::Slack, &[]), target(&json, AlertFormat::Json, &[])]).await;
    s.server.raise_quota_alert("shop", QuotaKind::Messages, QuotaLevel::Warning, 80_000, 100_000);

    let body = &wait_alerts(&slack, 1, WAIT).await[0];
    assert_eq!(slack.delivered()[0].headers["content-type"], "application/json");
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("Quota warning") && text.contains("shop"), "{text}");
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "section");
    assert_eq!(blocks[0]["text"]["type"], "mrkdwn");
    let section = blocks[0]["text"]["text"].as_str().unwrap();
    assert!(section.contains("*Quota warning*") && section.contains("80000 of its 100000 messages"), "{section}");
    assert_eq!(blocks[1]["type"], "context");
    assert_eq!(blocks[1]["elements"][0]["type"], "mrkdwn");

    let body = &wait_alerts(&json, 1, WAIT).await[0];
    assert_eq!(body["event"], "quota_warning");
    assert_eq!(body["severity"], "warning");
    assert_eq!(body["app_id"], "shop");
    assert!(body["message"].as_str().unwrap().contains("80000"), "{body}");
    assert_eq!(body["details"], serde_json::json!({"quota": "messages", "used": 80_000, "limit": 100_000}));
    assert!(body["node"].as_str().unwrap().contains("(node "), "{body}");
    let ts = body["timestamp"].as_str().unwrap();
    assert!(ts.len() == 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "RFC 3339 UTC: {ts}");
}

#[tokio::test]
async fn a_target_receives_only_the_events_it_lists() {
    let (only_exceeded, all) = (WebhookReceiver::start().await, WebhookReceiver::start().await);
    let s = server_with(vec![
        target(&only_exceeded, AlertFormat::Json, &[AlertKind::QuotaExceeded]),
        target(&all, AlertFormat::Json, &[]),
    ])
    .await;
    s.server.raise_quota_alert("a", QuotaKind::Connections, QuotaLevel::Warning, 9, 10);
    s.server.raise_quota_alert("a", QuotaKind::Connections, QuotaLevel::Exceeded, 10, 10);
    let got = wait_alerts(&all, 2, WAIT).await;
    let mut events: Vec<&str> = got.iter().map(|b| b["event"].as_str().unwrap()).collect();
    events.sort();
    assert_eq!(events, ["quota_exceeded", "quota_warning"]);
    let got = wait_alerts(&only_exceeded, 1, WAIT).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(only_exceeded.hits().len(), 1, "{got:?}");
    assert_eq!(got[0]["event"], "quota_exceeded");
}

#[tokio::test]
async fn a_failing_receiver_is_retried_until_it_accepts() {
    let receiver = WebhookReceiver::start().await;
    receiver.set_status(503);
    let s = server_with(vec![target(&receiver, AlertFormat::Json, &[])]).await;
    s.server.raise_quota_alert("a", QuotaKind::Messages, QuotaLevel::Exceeded, 5, 5);
    assert!(eventually(WAIT, || !receiver.hits().is_empty()).await, "first attempt never came");
    receiver.set_status(200);
    let got = wait_alerts(&receiver, 1, Duration::from_secs(10)).await;
    assert_eq!(got[0]["event"], "quota_exceeded");
    assert!(receiver.hits().len() >= 2, "delivered on a retry: {:?}", receiver.hits().len());
    assert_eq!(metric(s.addr, "herald_alerts_sent_total{event=\"quota_exceeded\"}").await, 1.0);
}

#[tokio::test]
async fn a_hanging_receiver_delays_neither_another_target_nor_the_caller() {
    let (hanging, healthy) = (WebhookReceiver::start().await, WebhookReceiver::start().await);
    hanging.set_hang(true);
    let s =
        server_with(vec![target(&hanging, AlertFormat::Slack, &[]), target(&healthy, AlertFormat::Json, &[])]).await;
    let started = std::time::Instant::now();
    for app in ["a", "b", "c"] {
        s.server.raise_quota_alert(app, QuotaKind::Messages, QuotaLevel::Warning, 8, 10);
    }
    assert!(started.elapsed() < Duration::from_millis(50), "raising alerts took {:?}", started.elapsed());
    let got = wait_alerts(&healthy, 3, Duration::from_secs(2)).await;
    let mut apps: Vec<&str> = got.iter().map(|b| b["app_id"].as_str().unwrap()).collect();
    apps.sort();
    assert_eq!(apps, ["a", "b", "c"]);
    assert!(hanging.delivered().is_empty());
}

#[tokio::test]
async fn a_quota_alert_is_sent_once_per_app_quota_and_level() {
    let receiver = WebhookReceiver::start().await;
    let s = server_with(vec![target(&receiver, AlertFormat::Json, &[])]).await;
    for _ in 0..3 {
        s.server.raise_quota_alert("a", QuotaKind::Messages, QuotaLevel::Warning, 80, 100);
    }
    s.server.raise_quota_alert("a", QuotaKind::Connections, QuotaLevel::Warning, 8, 10);
    s.server.raise_quota_alert("b", QuotaKind::Messages, QuotaLevel::Warning, 80, 100);
    wait_alerts(&receiver, 3, WAIT).await;
    tokio::time::sleep(QUIET).await;
    let mut got: Vec<String> = receiver
        .delivered()
        .iter()
        .map(|h| {
            let b = h.json();
            format!("{}:{}", b["app_id"].as_str().unwrap(), b["details"]["quota"].as_str().unwrap())
        })
        .collect();
    got.sort();
    assert_eq!(got, ["a:connections", "a:messages", "b:messages"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_that_does_not_validate_sends_config_reload_failed_with_the_error() {
    let receiver = WebhookReceiver::start().await;
    let dir = temp_data_dir("alerts-reload");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("herald.toml");
    let alerts =
        format!("[[alerts]]\nurl = \"{}\"\nformat = \"json\"\nevents = [\"config_reload_failed\"]\n", receiver.url());
    let app = "[[apps]]\nid = \"a\"\nkey = \"a-key\"\nsecret = \"a-secret\"\n";
    std::fs::write(&path, format!("host = \"127.0.0.1\"\nport = 0\n{alerts}{app}")).unwrap();
    let herald = HeraldProcess::start(&["--config", path.to_str().unwrap()]);
    std::fs::write(&path, format!("host = \"127.0.0.1\"\nport = 0\nactivity_timeout = 0\n{alerts}{app}")).unwrap();
    herald.hangup();
    let got = wait_alerts(&receiver, 1, WAIT).await;
    assert_eq!(got[0]["event"], "config_reload_failed");
    let error = got[0]["details"]["error"].as_str().unwrap();
    assert!(error.starts_with("activity_timeout:"), "names the key: {error}");
    assert!(got[0]["message"].as_str().unwrap().contains("the running one stays"), "{}", got[0]);
}

#[tokio::test]
async fn dead_lettered_webhooks_make_one_alert_per_app_and_interval_with_the_count() {
    let (hooks, alerts) = (WebhookReceiver::start().await, WebhookReceiver::start().await);
    hooks.set_status(503);
    let mut config = webhook_config(&hooks.url(), &["channel_occupied"], "alerts-dead");
    config.webhook_retry_max_elapsed = 1;
    config.alerts = vec![target(&alerts, AlertFormat::Json, &[AlertKind::WebhookDeadLetter])];
    let s = start_with(config).await;
    let mut client = s.client().await;
    for channel in ["d1", "d2", "d3"] {
        client.subscribe(channel).await;
    }
    // Dead-lettered after ~1 s; reported at the next 10 s tick of the aggregated warnings.
    let counted = |alerts: &WebhookReceiver| -> u64 {
        alerts.delivered().iter().map(|h| h.json()["details"]["count"].as_u64().unwrap()).sum()
    };
    assert!(eventually(Duration::from_secs(25), || counted(&alerts) >= 3).await, "{:?}", alerts.hits());
    let got: Vec<Value> = alerts.delivered().iter().map(|h| h.json()).collect();
    assert!(got.len() <= 2, "aggregated, not one alert per letter: {got:#?}");
    assert_eq!(counted(&alerts), 3);
    assert_eq!(got[0]["event"], "webhook_dead_letter");
    assert_eq!(got[0]["app_id"], APP_ID);
    assert_eq!(got[0]["details"]["interval_seconds"], 10);
}

#[tokio::test]
async fn alerts_beyond_a_stuck_targets_queue_are_dropped_and_counted() {
    let hanging = WebhookReceiver::start().await;
    hanging.set_hang(true);
    let s = server_with(vec![target(&hanging, AlertFormat::Json, &[])]).await;
    s.server.raise_quota_alert("first", QuotaKind::Messages, QuotaLevel::Warning, 8, 10);
    // The target's task takes the first alert off the queue at once (its request hangs); the
    // queue then holds 256 more.
    tokio::time::sleep(QUIET).await;
    for i in 0..300 {
        s.server.raise_quota_alert(&format!("app-{i}"), QuotaKind::Messages, QuotaLevel::Warning, 8, 10);
    }
    assert_eq!(metric(s.addr, "herald_alerts_dropped_total").await, 44.0);
}
