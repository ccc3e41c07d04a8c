//! `POST /apps/{id}/events` accepted and delivered (PROTOCOL.md 10.3): the exact frame each
//! subscriber of each target channel gets, `socket_id` exclusion, the `channel` / `channels`
//! forms, how `data` is carried, event names, server-to-user channels, and the `info` answer.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use serde_json::json;
use support::*;

// ---------------------------------------------------------------- POST /events

#[tokio::test]
async fn trigger_delivers_exact_frame_with_data_string_unchanged() {
    let srv = start().await;
    let mut c = subscriber(&srv, &["news"]).await;
    let data = r#"{"message":"hello \"world\"","n":1}"#;
    let r = srv.api().trigger(json!({"name": "my-event", "channels": ["news"], "data": data})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({}));
    assert_eq!(c.recv().await, ev("my-event", "news", data));
    c.expect_silence().await;
}

#[tokio::test]
async fn trigger_to_several_channels_reaches_each_channels_subscribers() {
    let srv = start().await;
    let mut a = subscriber(&srv, &["a"]).await;
    let mut b = subscriber(&srv, &["b"]).await;
    let mut other = subscriber(&srv, &["c"]).await;
    let r = srv.api().trigger(json!({"name": "e", "channels": ["a", "b"], "data": "x"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(a.recv().await, ev("e", "a", "x"));
    assert_eq!(b.recv().await, ev("e", "b", "x"));
    a.expect_silence().await;
    b.expect_silence().await;
    other.expect_silence().await;
}

#[tokio::test]
async fn subscriber_of_two_target_channels_gets_one_copy_per_channel() {
    let srv = start().await;
    let mut c = subscriber(&srv, &["a", "b"]).await;
    let r = srv.api().trigger(json!({"name": "e", "channels": ["a", "b", "z"], "data": "x"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let mut got = vec![c.recv().await, c.recv().await];
    got.sort_by_key(|v| v["channel"].as_str().unwrap().to_owned());
    assert_eq!(got, vec![ev("e", "a", "x"), ev("e", "b", "x")]);
    c.expect_silence().await;
}

#[tokio::test]
async fn socket_id_excludes_only_that_connection() {
    let srv = start().await;
    let mut sender = subscriber(&srv, &["room"]).await;
    let mut other = subscriber(&srv, &["room"]).await;
    let r =
        srv.api().trigger(json!({"name": "e", "channels": ["room"], "data": "x", "socket_id": sender.socket_id})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(other.recv().await, ev("e", "room", "x"));
    sender.expect_silence().await;
}

#[tokio::test]
async fn socket_id_of_unknown_connection_is_accepted() {
    let srv = start().await;
    let mut c = subscriber(&srv, &["room"]).await;
    let r = srv.api().trigger(json!({"name": "e", "channels": ["room"], "data": "x", "socket_id": "123.456"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.recv().await, ev("e", "room", "x"));
}

#[tokio::test]
async fn single_channel_field_php_style_is_accepted() {
    let srv = start().await;
    let mut c = subscriber(&srv, &["solo"]).await;
    let r = srv.api().trigger(json!({"name": "e", "channel": "solo", "data": "x"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({}));
    assert_eq!(c.recv().await, ev("e", "solo", "x"));
}

#[tokio::test]
async fn channels_wins_over_channel_when_both_present() {
    let srv = start().await;
    let mut a = subscriber(&srv, &["a"]).await;
    let mut b = subscriber(&srv, &["b"]).await;
    let r = srv.api().trigger(json!({"name": "e", "channel": "a", "channels": ["b"], "data": "x"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(b.recv().await, ev("e", "b", "x"));
    a.expect_silence().await;
}

#[tokio::test]
async fn non_string_data_is_serialized_compactly() {
    let srv = start().await;
    let mut c = subscriber(&srv, &["room"]).await;
    let body = br#"{"name":"e","channels":["room"],"data":{ "a" : 1, "b" : [ 1, 2 ] }}"#;
    let r = post_raw(&srv, &events_path(), body).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.recv().await, ev("e", "room", r#"{"a":1,"b":[1,2]}"#));
    let r = srv.api().trigger(json!({"name": "n", "channels": ["room"], "data": 42})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.recv().await, ev("n", "room", "42"));
}

#[tokio::test]
async fn empty_string_data_is_delivered() {
    let srv = start().await;
    let mut c = subscriber(&srv, &["room"]).await;
    let r = srv.api().trigger(json!({"name": "e", "channels": ["room"], "data": ""})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.recv().await, ev("e", "room", ""));
}

#[tokio::test]
async fn event_names_are_not_restricted_to_a_charset() {
    let srv = start().await;
    let mut c = subscriber(&srv, &["a"]).await;
    let name = r"App\Events\Order.Shipped";
    let r = srv.api().trigger(json!({"name": name, "channels": ["a"], "data": "x"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.recv().await, ev(name, "a", "x"));
}

#[tokio::test]
async fn server_to_user_channel_is_accepted_and_reaches_the_signed_in_user() {
    let srv = start().await;
    let mut c = signed_in(&srv, "u1").await;
    c.send(json!({"event": "pusher:subscribe", "data": {"channel": "#server-to-user-u1"}})).await;
    c.recv_event("pusher_internal:subscription_succeeded").await;
    let r = srv.api().trigger(json!({"name": "notice", "channels": ["#server-to-user-u1"], "data": "hi"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.recv().await, ev("notice", "#server-to-user-u1", "hi"));
    // Nobody signed in as u2: still accepted.
    let r = srv.api().trigger(json!({"name": "notice", "channels": ["#server-to-user-u2"], "data": "hi"})).await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn trigger_response_without_info_is_empty_object() {
    let srv = start().await;
    let r = srv.api().trigger(json!({"name": "e", "channels": ["a", "presence-p"], "data": "x"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body.trim(), "{}");
}

#[tokio::test]
async fn trigger_info_reports_counts_with_user_count_only_for_presence() {
    let srv = start().await;
    // presence-p: user "1" on two connections, user "2" on one → 2 users, 3 subscriptions.
    let _p1 = presence_member(&srv, "presence-p", r#""1""#).await;
    let _p1b = presence_member(&srv, "presence-p", r#""1""#).await;
    let _p2 = presence_member(&srv, "presence-p", r#""2""#).await;
    let _s1 = subscriber(&srv, &["pub"]).await;
    let _s2 = subscriber(&srv, &["pub"]).await;
    let r = srv
        .api()
        .trigger(json!({"name": "e", "channels": ["presence-p", "pub", "empty"], "data": "x", "info": "user_count,subscription_count"}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json(),
        json!({"channels": {
            "presence-p": {"user_count": 2, "subscription_count": 3},
            "pub": {"subscription_count": 2},
            "empty": {"subscription_count": 0},
        }})
    );
    // Only user_count asked: non-presence channels get an empty object.
    let r = srv
        .api()
        .trigger(json!({"name": "e", "channels": ["presence-p", "pub"], "data": "x", "info": "user_count"}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"channels": {"presence-p": {"user_count": 2}, "pub": {}}}));
}
