//! Message accounting, daily quotas, the API rate limit and `GET /apps/{id}/usage`
//! (PROTOCOL.md 10.11, docs/OPERATIONS.md "Usage and quotas"), through real sockets: a publish
//! to N subscribers counts N + 1, an app at `max_messages_per_day` gets 403 on publishes and
//! `pusher:error` on client events, the count survives a restart, every webhook attempt counts,
//! `max_api_requests_per_second`
//! answers 429 with `Retry-After`, and two nodes on one private Redis share the count.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const USAGE: &str = "/apps/app-id/usage";

fn publish_body() -> Value {
    json!({"name": "tick", "channel": "room", "data": "{}"})
}

async fn usage(server: &TestServer) -> Value {
    let resp = server.api().get(USAGE, &[]).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.json()
}

fn today() -> String {
    let days = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 86_400;
    let date = time::Date::from_julian_day(2_440_588 + days as i32).unwrap();
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

#[tokio::test]
async fn a_daily_quota_stops_publishes_and_client_events_and_survives_a_restart() {
    let dir = temp_data_dir("usage-quota");
    let mut config = config_with_limits(|l| l.max_messages_per_day = Some(1000));
    config.data_dir = dir.clone();
    let server = start_with(config.clone()).await;
    let mut clients = Vec::new();
    for _ in 0..9 {
        let mut c = server.client().await;
        c.subscribe("room").await;
        clients.push(c);
    }
    let mut sender = server.client().await;
    sender.subscribe_private("private-chat").await;

    // One publish to 9 subscribers: 1 API request + 9 deliveries (the usage request counts 1).
    let before = usage(&server).await["messages"].as_u64().unwrap();
    assert_eq!(server.api().trigger(publish_body()).await.status, 200);
    let after = usage(&server).await["messages"].as_u64().unwrap();
    assert_eq!(after - before, 10 + 1);

    let mut accepted = 1;
    let refused = loop {
        let resp = server.api().trigger(publish_body()).await;
        if resp.status != 200 {
            break resp;
        }
        accepted += 1;
        assert!(accepted < 200, "the quota never applied");
    };
    // 2 usage requests, then 10 per publish: the 100th starts at 993 (under 1000) and is
    // delivered in full (1003 with the refused request); the 101st is refused.
    assert_eq!(accepted, 100);
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("over its message quota"), "{}", refused.body);
    let batch = json!({"batch": [{"name": "tick", "channel": "room", "data": "{}"}]});
    assert_eq!(server.api().post("/apps/app-id/batch_events", &batch).await.status, 403);

    // Client events are refused once the flusher (every second) has seen the quota.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sender.send(json!({"event": "client-typing", "channel": "private-chat", "data": {}})).await;
    let error = sender.recv_error().await;
    assert!(error["message"].as_str().unwrap().contains("message quota"), "{error}");
    sender.assert_alive().await;

    let report = usage(&server).await;
    assert_eq!(report["date"], today());
    assert_eq!(report["max_messages_per_day"], 1000);
    assert_eq!((report["connections"].as_u64(), report["peak_connections"].as_u64()), (Some(10), Some(10)));
    assert_eq!(report["max_connections"], Value::Null);
    let hourly: Vec<u64> = serde_json::from_value(report["hourly"].clone()).unwrap();
    assert_eq!(hourly.len(), 24);
    assert_eq!(hourly.iter().sum::<u64>(), report["messages"].as_u64().unwrap());
    let counted = report["messages"].as_u64().unwrap();
    assert!(counted >= 1000, "{report}");

    drop((clients, sender));
    server.server.shutdown().await;
    let server = start_with(config).await;
    let report = usage(&server).await;
    assert!(report["messages"].as_u64().unwrap() > counted, "the count survived the restart: {report}");
    let resp = server.api().trigger(publish_body()).await;
    assert_eq!(resp.status, 403, "{}", resp.body);
    server.server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_app_without_quotas_reports_null_limits_and_writes_nothing() {
    let dir = temp_data_dir("usage-no-quota");
    let mut config = test_config();
    config.data_dir = dir.clone();
    let server = start_with(config).await;
    assert_eq!(server.api().trigger(publish_body()).await.status, 200);
    let report = usage(&server).await;
    assert_eq!((report["max_messages_per_day"].clone(), report["messages"].as_u64()), (Value::Null, Some(2)));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(!dir.exists(), "no quota: usage stays in memory");
    server.server.shutdown().await;
}

#[tokio::test]
async fn every_webhook_request_sent_counts_each_attempt() {
    let receiver = WebhookReceiver::start().await;
    let config = webhook_config(&receiver.url(), &["channel_occupied"], "usage-webhooks");
    let dir = config.data_dir.clone();
    let server = start_with(config).await;
    receiver.set_status(500);
    let mut c = server.client().await;
    c.subscribe("room").await;
    assert!(eventually(WAIT, || receiver.hits().len() >= 2).await, "retried once at least");
    receiver.set_status(200);
    assert!(eventually(WAIT, || receiver.delivered().len() == 1).await);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let attempts = receiver.hits().len() as u64;
    // The attempts, plus this usage request; subscribing counts nothing.
    assert_eq!(usage(&server).await["messages"], attempts + 1);
    server.server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn over_the_api_rate_limit_requests_get_429_with_retry_after() {
    let server = start_with(config_with_limits(|l| l.max_api_requests_per_second = Some(3))).await;
    for _ in 0..3 {
        assert_eq!(server.api().get("/apps/app-id/channels", &[]).await.status, 200);
    }
    let resp = server.api().get("/apps/app-id/channels", &[]).await;
    assert_eq!(resp.status, 429, "{}", resp.body);
    assert!(resp.headers.to_ascii_lowercase().contains("retry-after: 1"), "{}", resp.headers);
    assert!(resp.body.contains("rate limit"), "{}", resp.body);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(server.api().get("/apps/app-id/channels", &[]).await.status, 200, "refilled");
    let m = raw_http(server.addr, "GET", "/metrics", b"").await.body;
    assert!(m.contains(r#"herald_quota_refusals_total{app_id="app-id",reason="api_rate"} 1"#), "{m}");
    server.server.shutdown().await;
}

#[tokio::test]
async fn two_nodes_on_one_redis_share_the_count_and_the_quota() {
    let redis = Redis::start();
    let mut config = node_config(&redis);
    config.apps[0].limits.max_messages_per_day = Some(60);
    let a = start_with(config.clone()).await;
    let b = start_with(config).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut on_a = a.client().await;
    on_a.subscribe("room").await;
    let mut on_b = b.client().await;
    on_b.subscribe("room").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 10 publishes on A: 10 requests on A, 10 deliveries on A, 10 on B.
    for _ in 0..10 {
        assert_eq!(a.api().trigger(publish_body()).await.status, 200);
    }
    let mut seen = 0;
    while seen < 10 {
        on_b.recv_event("tick").await;
        seen += 1;
    }
    let mut report = Value::Null;
    for _ in 0..50 {
        report = usage(&b).await;
        if report["messages"].as_u64().unwrap() >= 30 && report["connections"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(report["messages"].as_u64().unwrap() >= 30, "node B sees node A's requests and deliveries: {report}");
    assert_eq!(report["connections"], 2, "both nodes' connections: {report}");
    assert_eq!(report["peak_connections"], 2);

    // Publishes on B: the quota (60) applies to the cluster-wide count.
    let refused = eventually_async(Duration::from_secs(10), || {
        let b = &b;
        async move { b.api().trigger(publish_body()).await.status == 403 }
    })
    .await;
    assert!(refused, "node B refuses once the shared count reached the quota");
    let on_a_too = eventually_async(WAIT, || {
        let a = &a;
        async move { a.api().trigger(publish_body()).await.status == 403 }
    })
    .await;
    assert!(on_a_too);
    a.server.shutdown().await;
    b.server.shutdown().await;
}

#[tokio::test]
async fn on_a_redis_cluster_the_usage_keys_of_an_app_share_one_slot_and_the_count_is_shared() {
    use herald::cluster::ClusterConfig;
    use herald::config::adapter::AdapterConfig;
    let rc = RedisCluster::start();
    let mut config = test_config();
    config.adapter = AdapterConfig::Redis(ClusterConfig {
        url: rc.url(),
        prefix: "rcu".into(),
        node_timeout: Duration::from_secs(2),
        heartbeat: Duration::from_millis(400),
        leave_grace: Duration::from_millis(500),
        removal_delay: Duration::from_millis(500),
    });
    let a = start_with(config.clone()).await;
    let b = start_with(config).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    for _ in 0..5 {
        assert_eq!(a.api().trigger(publish_body()).await.status, 200);
    }
    let mut report = Value::Null;
    for _ in 0..50 {
        report = usage(&b).await;
        if report["messages"].as_u64().unwrap() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(report["messages"].as_u64().unwrap() >= 5, "node B reads node A's requests: {report}");
    assert_eq!(report["hourly"].as_array().unwrap().len(), 24);
    a.server.shutdown().await;
    b.server.shutdown().await;
}
