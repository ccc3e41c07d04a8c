//! User authentication and what hangs off it (PROTOCOL.md 8): signin, server-to-user events,
//! terminate_connections, watchlist events.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use serde_json::{json, Value};
use support::*;

async fn signin(c: &mut Client, user_data: &str) -> Value {
    let auth = user_auth(&c.socket_id, user_data);
    c.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})).await;
    c.recv().await
}

fn watch_config() -> herald::config::Config {
    let mut cfg = test_config();
    cfg.apps[0].limits.enable_watchlist_events = true;
    cfg
}

#[tokio::test]
async fn signin_success_echoes_user_data_string() {
    let srv = start().await;
    let mut c = srv.client().await;
    let ud = r#"{"id":"u-1","user_info":{"name":"Ada"}}"#;
    let ok = signin(&mut c, ud).await;
    assert_eq!(ok, json!({"event": "pusher:signin_success", "data": {"user_data": ud}}));
}

#[tokio::test]
async fn signin_with_bad_signature_is_an_error_and_connection_stays_open() {
    let srv = start().await;
    let mut c = srv.client().await;
    let ud = r#"{"id":"u-1"}"#;
    c.send(json!({"event": "pusher:signin", "data": {"auth": format!("{KEY}:{}", "0".repeat(64)), "user_data": ud}}))
        .await;
    let err = c.recv().await;
    assert_eq!(err["event"], "pusher:error");
    assert_eq!(err["data"]["code"], Value::Null);
    c.send(json!({"event": "pusher:ping"})).await;
    assert_eq!(c.recv().await["event"], "pusher:pong");
}

#[tokio::test]
async fn signin_as_a_different_user_on_same_connection_fails() {
    let srv = start().await;
    let mut c = srv.client().await;
    signin(&mut c, r#"{"id":"u-1"}"#).await;
    let err = signin(&mut c, r#"{"id":"u-2"}"#).await;
    assert_eq!(err["event"], "pusher:error");
    // same id again succeeds
    assert_eq!(signin(&mut c, r#"{"id":"u-1"}"#).await["event"], "pusher:signin_success");
}

#[tokio::test]
async fn send_to_user_reaches_every_connection_of_that_user_only() {
    let srv = start().await;
    let mut a1 = srv.client().await;
    let mut a2 = srv.client().await;
    let mut b = srv.client().await;
    for (c, id) in [(&mut a1, "alice"), (&mut a2, "alice"), (&mut b, "bob")] {
        signin(c, &format!(r#"{{"id":"{id}"}}"#)).await;
        let ch = format!("#server-to-user-{id}");
        assert_eq!(c.subscribe(&ch).await["event"], "pusher_internal:subscription_succeeded");
    }
    let r = srv
        .api()
        .trigger(json!({"name": "notice", "channels": ["#server-to-user-alice"], "data": "{\"text\":\"hi\"}"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let want = json!({"event": "notice", "channel": "#server-to-user-alice", "data": "{\"text\":\"hi\"}"});
    assert_eq!(a1.recv().await, want);
    assert_eq!(a2.recv().await, want);
    b.expect_silence().await;
}

#[tokio::test]
async fn send_to_user_reaches_a_signed_in_connection_before_it_subscribes_to_its_channel() {
    let srv = start().await;
    let mut alice = srv.client().await;
    let mut excluded = srv.client().await;
    let mut bob = srv.client().await;
    for (c, id) in [(&mut alice, "alice"), (&mut excluded, "alice"), (&mut bob, "bob")] {
        assert_eq!(signin(c, &format!(r#"{{"id":"{id}"}}"#)).await["event"], "pusher:signin_success");
    }
    // Nobody subscribed to #server-to-user-alice: the signed-in connections are its recipients.
    let body =
        json!({"name": "notice", "channels": ["#server-to-user-alice"], "data": "hi", "socket_id": excluded.socket_id});
    let r = srv.api().trigger(body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(alice.recv().await, json!({"event": "notice", "channel": "#server-to-user-alice", "data": "hi"}));
    excluded.expect_silence().await;
    bob.expect_silence().await;
    // Subscribing afterwards (as pusher-js does) changes nothing: one copy per connection.
    assert_eq!(alice.subscribe("#server-to-user-alice").await["event"], "pusher_internal:subscription_succeeded");
    let r = srv.api().trigger(json!({"name": "again", "channels": ["#server-to-user-alice"], "data": "2"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(alice.recv().await["event"], "again");
    alice.expect_silence().await;
}

#[tokio::test]
async fn server_to_user_channel_of_another_user_is_refused() {
    let srv = start().await;
    let mut c = srv.client().await;
    signin(&mut c, r#"{"id":"alice"}"#).await;
    let err = c.subscribe("#server-to-user-bob").await;
    assert_eq!(err["event"], "pusher:error");
    assert_eq!(err["data"]["message"], "Not allowed to subscribe to #server-to-user-bob");
}

#[tokio::test]
async fn terminate_connections_closes_only_that_users_signed_in_connections_with_4009() {
    let srv = start().await;
    let mut a = srv.client().await;
    let mut b = srv.client().await;
    signin(&mut a, r#"{"id":"alice"}"#).await;
    signin(&mut b, r#"{"id":"bob"}"#).await;
    // presence-only "alice" (never signed in) is not affected
    let mut p = srv.client().await;
    p.subscribe_presence("presence-x", r#"{"user_id":"alice"}"#).await;
    let r = srv.api().post("/apps/app-id/users/alice/terminate_connections", &json!({})).await;
    assert_eq!((r.status, r.json()), (200, json!({})));
    let err = a.recv().await;
    assert_eq!(err["data"]["code"], 4009);
    assert_eq!(a.closed().await.code, 4009);
    b.send(json!({"event": "pusher:ping"})).await;
    assert_eq!(b.recv().await["event"], "pusher:pong");
    p.send(json!({"event": "pusher:ping"})).await;
    assert_eq!(p.recv().await["event"], "pusher:pong");
}

#[tokio::test]
async fn watchlist_initial_state_then_online_and_offline() {
    let srv = start_with(watch_config()).await;
    let mut online_user = srv.client().await;
    signin(&mut online_user, r#"{"id":"u-2"}"#).await;

    let mut watcher = srv.client().await;
    let ok = signin(&mut watcher, r#"{"id":"u-1","watchlist":["u-2","u-3"]}"#).await;
    assert_eq!(ok["event"], "pusher:signin_success");
    let initial = watcher.recv().await;
    assert_eq!(
        initial,
        json!({"event": "pusher_internal:watchlist_events", "data": {"events": [
            {"name": "online", "user_ids": ["u-2"]}, {"name": "offline", "user_ids": ["u-3"]}]}})
    );

    let mut u3 = srv.client().await;
    signin(&mut u3, r#"{"id":"u-3"}"#).await;
    assert_eq!(
        watcher.recv().await,
        json!({"event": "pusher_internal:watchlist_events", "data": {"events": [{"name": "online", "user_ids": ["u-3"]}]}})
    );
    // a second connection of u-3 changes nothing
    let mut u3b = srv.client().await;
    signin(&mut u3b, r#"{"id":"u-3"}"#).await;
    watcher.expect_silence().await;
    drop(u3);
    watcher.expect_silence().await;
    drop(u3b);
    assert_eq!(
        watcher.recv().await,
        json!({"event": "pusher_internal:watchlist_events", "data": {"events": [{"name": "offline", "user_ids": ["u-3"]}]}})
    );
}

#[tokio::test]
async fn watchlist_over_limit_keeps_first_100_and_sends_4302() {
    let srv = start_with(watch_config()).await;
    let mut c = srv.client().await;
    let ids: Vec<String> = (0..101).map(|i| format!("w{i}")).collect();
    let ud = json!({"id": "me", "watchlist": ids}).to_string();
    assert_eq!(signin(&mut c, &ud).await["event"], "pusher:signin_success");
    let err = c.recv().await;
    assert_eq!(err["event"], "pusher:error");
    assert_eq!(err["data"]["code"], 4302);
    let initial = c.recv().await;
    let offline = &initial["data"]["events"][0];
    assert_eq!(offline["name"], "offline");
    assert_eq!(offline["user_ids"].as_array().unwrap().len(), 100);
    assert!(!offline["user_ids"].as_array().unwrap().contains(&json!("w100")));
}

#[tokio::test]
async fn no_watchlist_events_when_app_flag_off() {
    let srv = start().await;
    let mut c = srv.client().await;
    signin(&mut c, r#"{"id":"me","watchlist":["x"]}"#).await;
    c.expect_silence().await;
}

#[tokio::test]
async fn presence_without_channel_data_joins_as_signed_in_user() {
    let srv = start().await;
    let mut c = srv.client().await;
    signin(&mut c, r#"{"id":"u-9","user_info":{"name":"Nine"}}"#).await;
    let auth = channel_auth(&c.socket_id, "presence-room", None);
    c.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": "presence-room"}})).await;
    let ok = c.recv().await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(data_of(&ok)["presence"]["hash"], json!({"u-9": {"name": "Nine"}}));
}
