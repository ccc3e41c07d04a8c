//! Quotas and alerts together, as issue #13's acceptance states them: an app with
//! `max_messages_per_day = 1000` and 9 subscribers on one channel accepts about 100 publishes,
//! then answers 403, and its Slack target receives exactly one `quota_warning` and one
//! `quota_exceeded`; on two nodes sharing one Redis the count is shared and each alert is still
//! sent once.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::time::Duration;

use herald::alerts::{AlertFormat, AlertKinds, AlertTarget};
use serde_json::{json, Value};
use support::*;

fn slack(receiver: &WebhookReceiver) -> AlertTarget {
    AlertTarget { url: receiver.url(), format: AlertFormat::Slack, events: AlertKinds::ALL }
}

fn publish_body() -> Value {
    json!({"name": "tick", "channel": "room", "data": "{}"})
}

/// The Slack texts received so far that name a quota alert, as ("warning" | "exceeded").
fn quota_alerts(receiver: &WebhookReceiver) -> Vec<&'static str> {
    receiver
        .delivered()
        .iter()
        .filter_map(|h| {
            let text = h.json()["text"].as_str().unwrap_or_default().to_owned();
            if text.contains("Quota warning") {
                Some("warning")
            } else if text.contains("Quota exceeded") {
                Some("exceeded")
            } else {
                None
            }
        })
        .collect()
}

/// Publishes through `server` until one is refused; returns how many were accepted.
async fn publish_until_refused(server: &TestServer) -> usize {
    let mut accepted = 0;
    loop {
        let resp = server.api().trigger(publish_body()).await;
        if resp.status == 403 {
            assert!(resp.body.contains("over its message quota"), "{}", resp.body);
            return accepted;
        }
        assert_eq!(resp.status, 200, "{}", resp.body);
        accepted += 1;
        assert!(accepted < 200, "the quota never applied");
    }
}

#[tokio::test]
async fn one_node_sends_one_quota_warning_and_one_quota_exceeded_to_slack() {
    let rx = WebhookReceiver::start().await;
    let mut config = config_with_limits(|l| l.max_messages_per_day = Some(1000));
    config.data_dir = temp_data_dir("usage-alerts");
    config.alerts = vec![slack(&rx)];
    let server = start_with(config).await;
    let mut clients = Vec::new();
    for _ in 0..9 {
        let mut c = server.client().await;
        c.subscribe("room").await;
        clients.push(c);
    }
    let accepted = publish_until_refused(&server).await;
    assert!((98..=100).contains(&accepted), "10 per publish against 1,000: {accepted}");

    assert!(eventually(Duration::from_secs(5), || quota_alerts(&rx).len() >= 2).await, "{:?}", quota_alerts(&rx));
    // more refused publishes and flushes do not repeat them
    for _ in 0..5 {
        assert_eq!(server.api().trigger(publish_body()).await.status, 403);
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut got = quota_alerts(&rx);
    got.sort_unstable();
    assert_eq!(got, ["exceeded", "warning"]);
    server.server.shutdown().await;
}

#[tokio::test]
async fn two_nodes_share_the_count_and_send_each_quota_alert_once() {
    let rx = WebhookReceiver::start().await;
    let redis = Redis::start();
    let mut config = node_config(&redis);
    config.apps[0].limits.max_messages_per_day = Some(1000);
    config.alerts = vec![slack(&rx)];
    let a = start_with(config.clone()).await;
    let b = start_with(config).await;
    let mut clients = Vec::new();
    for i in 0..9 {
        let node = if i % 2 == 0 { &a } else { &b };
        let mut c = node.client().await;
        c.subscribe("room").await;
        clients.push(c);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // publishes alternate between the nodes until the shared count refuses them
    let mut accepted = 0;
    'outer: loop {
        for node in [&a, &b] {
            let resp = node.api().trigger(publish_body()).await;
            if resp.status == 403 {
                break 'outer;
            }
            assert_eq!(resp.status, 200, "{}", resp.body);
            accepted += 1;
            assert!(accepted < 300, "the quota never applied");
        }
    }
    // other nodes' counts are up to a second old: a few more may pass than on one node
    assert!((90..=130).contains(&accepted), "shared count: {accepted}");
    assert!(eventually(Duration::from_secs(6), || quota_alerts(&rx).len() >= 2).await, "{:?}", quota_alerts(&rx));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut got = quota_alerts(&rx);
    got.sort_unstable();
    assert_eq!(got, ["exceeded", "warning"], "once per cluster");
    a.server.shutdown().await;
    b.server.shutdown().await;
}
