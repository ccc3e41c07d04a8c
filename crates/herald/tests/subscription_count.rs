//! `pusher_internal:subscription_count` (PROTOCOL.md 9.2) for apps that enable it.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use serde_json::json;
use support::*;

fn counting_config(threshold: usize, throttle: u64) -> herald::config::Config {
    let mut cfg = test_config();
    cfg.apps[0].limits.enable_subscription_count = true;
    cfg.subscription_count_threshold = threshold;
    cfg.subscription_count_throttle = throttle;
    cfg
}

fn count_frame(channel: &str, n: u64) -> serde_json::Value {
    json!({"event": "pusher_internal:subscription_count", "channel": channel, "data": format!("{{\"subscription_count\":{n}}}")})
}

#[tokio::test]
async fn count_sent_to_all_subscribers_on_join_and_leave() {
    let srv = start_with(counting_config(100, 5)).await;
    let mut a = srv.client().await;
    assert_eq!(a.subscribe("room").await["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(a.recv().await, count_frame("room", 1));
    let mut b = srv.client().await;
    assert_eq!(b.subscribe("room").await["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(b.recv().await, count_frame("room", 2));
    assert_eq!(a.recv().await, count_frame("room", 2));
    b.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "room"}})).await;
    assert_eq!(a.recv().await, count_frame("room", 1));
}

#[tokio::test]
async fn no_count_when_app_has_it_disabled() {
    let srv = start().await;
    let mut a = srv.client().await;
    a.subscribe("room").await;
    let _b = {
        let mut b = srv.client().await;
        b.subscribe("room").await;
        b
    };
    a.expect_silence().await;
}

#[tokio::test]
async fn presence_channels_get_no_subscription_count() {
    let srv = start_with(counting_config(100, 5)).await;
    let mut a = srv.client().await;
    a.subscribe_presence("presence-r", r#"{"user_id":"1"}"#).await;
    a.expect_silence().await;
}

#[tokio::test]
async fn counts_above_threshold_are_coalesced_to_latest() {
    // threshold 1: with 2+ subscribers updates are throttled to one per second.
    let srv = start_with(counting_config(1, 1)).await;
    let mut a = srv.client().await;
    a.subscribe("big").await;
    assert_eq!(a.recv().await, count_frame("big", 1));
    let mut others = Vec::new();
    for _ in 0..3 {
        let mut c = srv.client().await;
        c.subscribe("big").await;
        others.push(c);
    }
    // Three joins within the throttle window: `a` gets at most one immediate update (if the
    // window since its first update had already passed) plus one coalesced update, which
    // carries the final count 4.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(2500);
    while let Ok(Some(v)) = tokio::time::timeout_at(deadline, next_json(&mut a.ws)).await {
        seen.push(data_of(&v)["subscription_count"].as_u64().unwrap());
    }
    assert_eq!(seen.last(), Some(&4), "updates seen: {seen:?}");
    assert!(seen.len() <= 2, "throttled to at most 2 updates, saw {seen:?}");
}

#[tokio::test]
async fn http_api_reports_subscription_count_for_every_type() {
    let srv = start().await;
    let mut a = srv.client().await;
    a.subscribe("pub").await;
    a.subscribe_presence("presence-p", r#"{"user_id":"1"}"#).await;
    let api = srv.api();
    let r = api.get("/apps/app-id/channels/pub", &[("info", "subscription_count")]).await.json();
    assert_eq!(r, json!({"occupied": true, "subscription_count": 1}));
    let r = api.get("/apps/app-id/channels/presence-p", &[("info", "subscription_count,user_count")]).await.json();
    assert_eq!(r, json!({"occupied": true, "subscription_count": 1, "user_count": 1}));
}
