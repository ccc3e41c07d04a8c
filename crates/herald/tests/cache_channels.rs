//! Cache channels (PROTOCOL.md 9.1): the last HTTP-published event is replayed to each new
//! subscriber; `pusher:cache_miss` when nothing is cached; client events are never cached.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use serde_json::json;
use support::*;

#[tokio::test]
async fn new_subscriber_gets_cache_miss_when_nothing_published() {
    let srv = start().await;
    let mut c = srv.client().await;
    assert_eq!(c.subscribe("cache-btc").await["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(c.recv().await, json!({"event": "pusher:cache_miss", "channel": "cache-btc"}));
}

#[tokio::test]
async fn last_published_event_is_replayed_after_subscription_succeeded() {
    let srv = start().await;
    let api = srv.api();
    for price in ["1", "2"] {
        let r =
            api.trigger(json!({"name": "price", "channel": "cache-btc", "data": format!("{{\"usd\":{price}}}")})).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let mut c = srv.client().await;
    assert_eq!(c.subscribe("cache-btc").await["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(c.recv().await, json!({"event": "price", "channel": "cache-btc", "data": "{\"usd\":2}"}));
    c.expect_silence().await;
}

#[tokio::test]
async fn private_cache_and_presence_cache_replay_too() {
    let srv = start().await;
    let api = srv.api();
    api.trigger(json!({"name": "e", "channels": ["private-cache-a", "presence-cache-b"], "data": "x"})).await;
    let mut c = srv.client().await;
    assert_eq!(c.subscribe_private("private-cache-a").await["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(c.recv().await["data"], "x");
    let cd = r#"{"user_id":"u1"}"#;
    assert_eq!(c.subscribe_presence("presence-cache-b", cd).await["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(c.recv().await, json!({"event": "e", "channel": "presence-cache-b", "data": "x"}));
}

#[tokio::test]
async fn client_events_are_not_cached() {
    let srv = start().await;
    let mut a = srv.client().await;
    a.subscribe_private("private-cache-room").await;
    assert_eq!(a.recv().await["event"], "pusher:cache_miss");
    a.send(json!({"event": "client-x", "channel": "private-cache-room", "data": {"n": 1}})).await;
    let mut b = srv.client().await;
    b.subscribe_private("private-cache-room").await;
    assert_eq!(b.recv().await["event"], "pusher:cache_miss");
}

#[tokio::test]
async fn expired_cache_gives_cache_miss() {
    let mut cfg = test_config();
    cfg.cache_ttl = 1;
    let srv = start_with(cfg).await;
    srv.api().trigger(json!({"name": "e", "channel": "cache-x", "data": "old"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut c = srv.client().await;
    c.subscribe("cache-x").await;
    assert_eq!(c.recv().await["event"], "pusher:cache_miss");
}

#[tokio::test]
async fn channel_info_cache_reports_data_and_ttl() {
    let srv = start().await;
    let api = srv.api();
    let empty = api.get("/apps/app-id/channels/cache-eth", &[("info", "cache")]).await;
    assert_eq!(empty.json(), json!({"occupied": false, "cache": null}));
    api.trigger(json!({"name": "p", "channel": "cache-eth", "data": "{\"usd\":3}"})).await;
    let r = api.get("/apps/app-id/channels/cache-eth", &[("info", "cache")]).await;
    let v = r.json();
    assert_eq!(v["cache"]["data"], "{\"usd\":3}");
    assert_eq!(v["cache"]["event"], "p");
    let ttl = v["cache"]["ttl"].as_u64().unwrap();
    assert!(ttl > 1700 && ttl <= 1800, "ttl {ttl}");
    // cached but nobody subscribed: not occupied, not listed
    assert_eq!(v["occupied"], false);
    assert_eq!(api.get("/apps/app-id/channels", &[]).await.json(), json!({"channels": {}}));
}

#[tokio::test]
async fn unsubscribed_cache_channel_is_still_replayed_later() {
    let srv = start().await;
    let mut a = srv.client().await;
    a.subscribe("cache-z").await;
    a.recv().await; // cache_miss
    srv.api().trigger(json!({"name": "e", "channel": "cache-z", "data": "v1"})).await;
    assert_eq!(a.recv().await["data"], "v1");
    a.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "cache-z"}})).await;
    drop(a);
    let mut b = srv.client().await;
    b.subscribe("cache-z").await;
    assert_eq!(b.recv().await["data"], "v1");
}
