//! Alerts in a cluster, each test on its own private `redis-server`: a quota alert raised by
//! both nodes is sent once; `redis_down` / `redis_restored` when Redis is killed and started
//! again; `node_lost` sent once when a node (a real herald process) is SIGKILLed and reaped.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::time::Duration;

use herald::alerts::{AlertFormat, AlertKinds, AlertTarget, QuotaKind, QuotaLevel};
use serde_json::Value;
use support::*;

async fn alerting_nodes(redis: &Redis, receiver: &WebhookReceiver, n: usize) -> Vec<TestServer> {
    let mut out = Vec::new();
    for _ in 0..n {
        let mut config = node_config(redis);
        config.alerts = vec![AlertTarget { url: receiver.url(), format: AlertFormat::Json, events: AlertKinds::ALL }];
        out.push(start_with(config).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // let the clients connect
    out
}

fn events(receiver: &WebhookReceiver) -> Vec<Value> {
    receiver.delivered().iter().map(|h| h.json()).collect()
}

async fn wait_event(receiver: &WebhookReceiver, event: &str, within: Duration) -> Value {
    let found = || events(receiver).into_iter().find(|b| b["event"] == event);
    let ok = eventually(within, || found().is_some()).await;
    assert!(ok, "no {event} alert within {within:?}: {:#?}", events(receiver));
    found().unwrap()
}

#[tokio::test]
async fn a_quota_alert_raised_on_both_nodes_is_sent_once_per_cluster() {
    let redis = Redis::start();
    let receiver = WebhookReceiver::start().await;
    let n = alerting_nodes(&redis, &receiver, 2).await;
    for node in &n {
        node.server.raise_quota_alert("shop", QuotaKind::Messages, QuotaLevel::Exceeded, 100, 100);
    }
    n[1].server.raise_quota_alert("shop", QuotaKind::Messages, QuotaLevel::Exceeded, 101, 100);
    wait_event(&receiver, "quota_exceeded", WAIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(events(&receiver).len(), 1, "{:#?}", events(&receiver));
    // Another level of the same quota is its own alert.
    n[1].server.raise_quota_alert("shop", QuotaKind::Messages, QuotaLevel::Warning, 80, 100);
    wait_event(&receiver, "quota_warning", WAIT).await;
}

#[tokio::test]
async fn losing_and_regaining_redis_sends_redis_down_then_redis_restored() {
    let mut redis = Redis::start();
    let receiver = WebhookReceiver::start().await;
    let _n = alerting_nodes(&redis, &receiver, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(events(&receiver).is_empty(), "nothing while Redis is up: {:#?}", events(&receiver));

    redis.kill();
    let down = wait_event(&receiver, "redis_down", WAIT).await;
    assert_eq!(down["severity"], "critical");
    assert!(down["details"]["error"].is_string(), "{down}");
    redis.spawn();
    let up = wait_event(&receiver, "redis_restored", WAIT).await;
    assert_eq!(up["severity"], "info");
    let kinds: Vec<Value> = events(&receiver).iter().map(|b| b["event"].clone()).collect();
    assert_eq!(kinds, ["redis_down", "redis_restored"], "one of each");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_without_leaving_is_reported_lost_once() {
    let redis = Redis::start();
    let receiver = WebhookReceiver::start().await;
    let survivors = alerting_nodes(&redis, &receiver, 2).await;
    let dir = temp_data_dir("alerts-victim");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("herald.toml");
    let adapter =
        format!("[adapter]\ndriver = \"redis\"\nurl = \"{}\"\nprefix = \"t\"\nnode_timeout = 2\n", redis.url());
    std::fs::write(&path, format!("host = \"127.0.0.1\"\nport = 0\n{adapter}")).unwrap();
    let victim = HeraldProcess::start(&["--config", path.to_str().unwrap()]);
    // Registered (its first heartbeat), then SIGKILLed: it never leaves.
    tokio::time::sleep(Duration::from_secs(1)).await;
    victim.stop();

    let lost = wait_event(&receiver, "node_lost", Duration::from_secs(10)).await;
    assert_eq!(lost["app_id"], Value::Null);
    assert!(lost["details"]["lost_node"].is_u64(), "{lost}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lost_alerts = events(&receiver).into_iter().filter(|b| b["event"] == "node_lost").count();
    assert_eq!(lost_alerts, 1, "sent by the reaper only: {:#?}", events(&receiver));
    drop(survivors);
}
