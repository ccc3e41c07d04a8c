//! The channel queries of the HTTP API (PROTOCOL.md 10.5–10.7): `GET /channels` (occupied
//! channels, prefix filter, counts), `GET /channels/{name}` and `GET /channels/{name}/users`,
//! each answered from live WebSocket subscriptions.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use serde_json::json;
use support::*;

// ---------------------------------------------------------------- GET /channels

#[tokio::test]
async fn channels_list_is_empty_object_when_nothing_is_occupied() {
    let srv = start().await;
    let r = srv.api().get(&channels_path(), &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body.trim(), r#"{"channels":{}}"#);
}

#[tokio::test]
async fn channels_list_shows_only_occupied_channels() {
    let srv = start().await;
    let _c = subscriber(&srv, &["a", "b"]).await;
    let mut leaver = subscriber(&srv, &["gone"]).await;
    leaver.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "gone"}})).await;
    sync(&mut leaver).await;
    // Publishing to a channel does not occupy it.
    srv.api().trigger(json!({"name": "e", "channels": ["nobody"], "data": "x"})).await;
    let r = srv.api().get(&channels_path(), &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"channels": {"a": {}, "b": {}}}));
}

#[tokio::test]
async fn channels_list_forgets_channels_of_disconnected_clients() {
    let srv = start().await;
    let c = subscriber(&srv, &["a"]).await;
    drop(c);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = srv.api().get(&channels_path(), &[]).await;
        if r.json() == json!({"channels": {}}) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still listed: {}", r.body);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn channels_list_filter_by_prefix() {
    let srv = start().await;
    let _c = subscriber(&srv, &["news-1", "news-2", "sport", "old-news-3"]).await;
    let r = srv.api().get(&channels_path(), &[("filter_by_prefix", "news-")]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"channels": {"news-1": {}, "news-2": {}}}));
    let r = srv.api().get(&channels_path(), &[("filter_by_prefix", "nothing")]).await;
    assert_eq!(r.json(), json!({"channels": {}}));
}

#[tokio::test]
async fn channels_list_user_count_with_presence_prefix() {
    let srv = start().await;
    let _a1 = presence_member(&srv, "presence-a", r#""1""#).await;
    let _a1b = presence_member(&srv, "presence-a", r#""1""#).await;
    let _a2 = presence_member(&srv, "presence-a", r#""2""#).await;
    let _b = presence_member(&srv, "presence-b", r#""9""#).await;
    let _pub = subscriber(&srv, &["public"]).await;
    let r = srv.api().get(&channels_path(), &[("filter_by_prefix", "presence-"), ("info", "user_count")]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"channels": {"presence-a": {"user_count": 2}, "presence-b": {"user_count": 1}}}));
}

#[tokio::test]
async fn channels_list_user_count_without_presence_prefix_is_400() {
    let srv = start().await;
    let r = srv.api().get(&channels_path(), &[("info", "user_count")]).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = srv.api().get(&channels_path(), &[("filter_by_prefix", "private-"), ("info", "user_count")]).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = srv.api().get(&channels_path(), &[("info", "bogus")]).await;
    assert_eq!(r.status, 400, "{r:?}");
}

#[tokio::test]
async fn channels_list_subscription_count_extension() {
    let srv = start().await;
    let _a = subscriber(&srv, &["a"]).await;
    let _b = subscriber(&srv, &["a"]).await;
    let r = srv.api().get(&channels_path(), &[("info", "subscription_count")]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"channels": {"a": {"subscription_count": 2}}}));
}

#[tokio::test]
async fn server_to_user_channels_are_never_listed() {
    let srv = start().await;
    let mut c = signed_in(&srv, "u1").await;
    c.send(json!({"event": "pusher:subscribe", "data": {"channel": "#server-to-user-u1"}})).await;
    c.recv_event("pusher_internal:subscription_succeeded").await;
    assert_eq!(c.subscribe("visible").await["event"], "pusher_internal:subscription_succeeded");
    let r = srv.api().get(&channels_path(), &[]).await;
    assert_eq!(r.json(), json!({"channels": {"visible": {}}}));
    // `#` must be percent-encoded in a URL (it starts the fragment); signed decoded.
    let q = srv.api().signed_query("GET", &channels_path(), &[("filter_by_prefix", "#")], b"", now());
    let q = q.replace("filter_by_prefix=#", "filter_by_prefix=%23");
    let r = raw_http(srv.addr, "GET", &format!("{}?{q}", channels_path()), b"").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"channels": {}}));
}

// ---------------------------------------------------------------- GET /channels/{name}

#[tokio::test]
async fn channel_info_unoccupied_is_occupied_false() {
    let srv = start().await;
    let r = srv.api().get(&format!("{}/empty", channels_path()), &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body.trim(), r#"{"occupied":false}"#);
    let r = srv.api().get(&format!("{}/empty", channels_path()), &[("info", "subscription_count")]).await;
    assert_eq!(r.json(), json!({"occupied": false, "subscription_count": 0}));
}

#[tokio::test]
async fn channel_info_occupied_with_subscription_count() {
    let srv = start().await;
    let _a = subscriber(&srv, &["room"]).await;
    let _b = subscriber(&srv, &["room"]).await;
    let r = srv.api().get(&format!("{}/room", channels_path()), &[]).await;
    assert_eq!(r.json(), json!({"occupied": true}));
    let r = srv.api().get(&format!("{}/room", channels_path()), &[("info", "subscription_count")]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"occupied": true, "subscription_count": 2}));
}

#[tokio::test]
async fn channel_info_presence_user_count() {
    let srv = start().await;
    let _a = presence_member(&srv, "presence-room", r#""1""#).await;
    let _b = presence_member(&srv, "presence-room", r#""1""#).await;
    let _c = presence_member(&srv, "presence-room", r#""2""#).await;
    let r = srv
        .api()
        .get(&format!("{}/presence-room", channels_path()), &[("info", "user_count,subscription_count")])
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"occupied": true, "user_count": 2, "subscription_count": 3}));
}

#[tokio::test]
async fn channel_info_user_count_on_non_presence_is_400() {
    let srv = start().await;
    for ch in ["room", "private-room"] {
        let r = srv.api().get(&format!("{}/{ch}", channels_path()), &[("info", "user_count")]).await;
        assert_eq!(r.status, 400, "{ch}: {r:?}");
    }
}

#[tokio::test]
async fn channel_info_cache_on_non_cache_channel_is_400() {
    let srv = start().await;
    let r = srv.api().get(&format!("{}/room", channels_path()), &[("info", "cache")]).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = srv.api().get(&format!("{}/cache-room", channels_path()), &[("info", "cache")]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    assert_eq!(v["occupied"], false);
    assert!(v.as_object().unwrap().contains_key("cache"), "{v}");
}

#[tokio::test]
async fn channel_info_invalid_name_or_info_is_400() {
    let srv = start().await;
    let r = srv.api().get(&format!("{}/bad%20name", channels_path()), &[]).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = srv.api().get(&format!("{}/room", channels_path()), &[("info", "bogus")]).await;
    assert_eq!(r.status, 400, "{r:?}");
}

// ---------------------------------------------------------------- GET /channels/{name}/users

#[tokio::test]
async fn presence_users_lists_distinct_string_ids() {
    let srv = start().await;
    let _a = presence_member(&srv, "presence-room", r#""1""#).await;
    let _a2 = presence_member(&srv, "presence-room", r#""1""#).await;
    let _b = presence_member(&srv, "presence-room", "2").await; // numeric id → "2"
    let r = srv.api().get(&format!("{}/presence-room/users", channels_path()), &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    let mut users = v["users"].as_array().unwrap().clone();
    users.sort_by_key(|u| u["id"].as_str().expect("ids are strings").to_owned());
    assert_eq!(users, vec![json!({"id": "1"}), json!({"id": "2"})]);
}

#[tokio::test]
async fn presence_users_on_non_presence_channel_is_400() {
    let srv = start().await;
    let _c = subscriber(&srv, &["room"]).await;
    for ch in ["room", "private-room"] {
        let r = srv.api().get(&format!("{}/{ch}/users", channels_path()), &[]).await;
        assert_eq!(r.status, 400, "{ch}: {r:?}");
    }
}

#[tokio::test]
async fn presence_users_of_unoccupied_channel_is_empty_list() {
    let srv = start().await;
    let r = srv.api().get(&format!("{}/presence-nobody/users", channels_path()), &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body.trim(), r#"{"users":[]}"#);
}
