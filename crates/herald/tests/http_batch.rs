//! `POST /apps/{id}/batch_events` (PROTOCOL.md 10.4): every event delivered in order, all or
//! nothing on an invalid or oversized event, per-event `socket_id` and per-event `info`.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use serde_json::{json, Value};
use support::*;

#[tokio::test]
async fn batch_delivers_every_event_in_order() {
    let srv = start().await;
    let mut c = subscriber(&srv, &["a", "b"]).await;
    let batch: Vec<Value> = (0..10)
        .map(|i| json!({"channel": if i % 2 == 0 { "a" } else { "b" }, "name": format!("e{i}"), "data": i.to_string()}))
        .collect();
    let r = srv.api().post(&batch_path(), &json!({ "batch": batch })).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({}));
    for i in 0..10 {
        let ch = if i % 2 == 0 { "a" } else { "b" };
        assert_eq!(c.recv().await, ev(&format!("e{i}"), ch, &i.to_string()));
    }
    c.expect_silence().await;
}

#[tokio::test]
async fn batch_of_11_events_is_400() {
    let srv = start().await;
    let mut c = subscriber(&srv, &["a"]).await;
    let batch: Vec<Value> = (0..11).map(|i| json!({"channel": "a", "name": "e", "data": i.to_string()})).collect();
    let r = srv.api().post(&batch_path(), &json!({ "batch": batch })).await;
    assert_eq!(r.status, 400, "{r:?}");
    c.expect_silence().await;
}

#[tokio::test]
async fn batch_with_one_invalid_event_is_400_and_delivers_nothing() {
    let srv = start().await;
    let mut c = subscriber(&srv, &["a"]).await;
    let invalid = [
        json!({"channel": "bad name", "name": "e", "data": "x"}),
        json!({"channel": "a", "name": "pusher:x", "data": "x"}),
        json!({"channel": "a", "data": "x"}),
        json!({"channel": "a", "name": "e", "data": "x", "socket_id": "nope"}),
        json!({"channels": ["a"], "name": "e", "data": "x"}),
        json!({"channel": "a", "name": "e", "data": "x", "info": "bogus"}),
        json!({"channel": "private-encrypted-x", "name": "e", "data": "x", "info": "members"}),
    ];
    for bad in invalid {
        let body = json!({"batch": [{"channel": "a", "name": "first", "data": "1"}, bad.clone(), {"channel": "a", "name": "last", "data": "3"}]});
        let r = srv.api().post(&batch_path(), &body).await;
        assert_eq!(r.status, 400, "with {bad}: {r:?}");
    }
    c.expect_silence().await;
}

#[tokio::test]
async fn batch_with_oversized_data_is_413_and_delivers_nothing() {
    let srv = start().await;
    let mut c = subscriber(&srv, &["a"]).await;
    let body = json!({"batch": [
        {"channel": "a", "name": "first", "data": "1"},
        {"channel": "a", "name": "big", "data": "x".repeat(10_241)},
    ]});
    let r = srv.api().post(&batch_path(), &body).await;
    assert_eq!(r.status, 413, "{r:?}");
    c.expect_silence().await;
}

#[tokio::test]
async fn batch_malformed_or_empty_is_400() {
    let srv = start().await;
    for body in [json!({}), json!({"batch": []}), json!({"batch": "x"}), json!({"batch": [1]})] {
        let r = srv.api().post(&batch_path(), &body).await;
        assert_eq!(r.status, 400, "body {body}: {r:?}");
    }
    let r = post_raw(&srv, &batch_path(), b"{oops").await;
    assert_eq!(r.status, 400, "{r:?}");
}

#[tokio::test]
async fn batch_info_is_reported_per_event_in_request_order() {
    let srv = start().await;
    let _m = presence_member(&srv, "presence-room", r#""1""#).await;
    let _s = subscriber(&srv, &["orders"]).await;
    let body = json!({"batch": [
        {"channel": "orders", "name": "created", "data": "{\"id\":1}"},
        {"channel": "presence-room", "name": "ping", "data": "hi", "info": "user_count,subscription_count"},
        {"channel": "orders", "name": "x", "data": "y", "info": "subscription_count,user_count"},
    ]});
    let r = srv.api().post(&batch_path(), &body).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"batch": [{}, {"user_count": 1, "subscription_count": 1}, {"subscription_count": 1}]}));
}

#[tokio::test]
async fn batch_socket_id_excludes_per_event() {
    let srv = start().await;
    let mut a = subscriber(&srv, &["room"]).await;
    let mut b = subscriber(&srv, &["room"]).await;
    let body = json!({"batch": [
        {"channel": "room", "name": "one", "data": "1", "socket_id": a.socket_id},
        {"channel": "room", "name": "two", "data": "2"},
    ]});
    let r = srv.api().post(&batch_path(), &body).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(a.recv().await, ev("two", "room", "2"));
    assert_eq!(b.recv().await, ev("one", "room", "1"));
    assert_eq!(b.recv().await, ev("two", "room", "2"));
}
