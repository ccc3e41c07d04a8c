//! The HTTP API endpoints over a real socket (PROTOCOL.md 10.3–10.8): triggering, batches,
//! channel queries, terminating users, keep-alive and isolation between apps. Every publish
//! is observed on real WebSocket subscribers.

mod support;

use std::net::SocketAddr;

use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn events_path() -> String {
    format!("/apps/{APP_ID}/events")
}

fn batch_path() -> String {
    format!("/apps/{APP_ID}/batch_events")
}

fn channels_path() -> String {
    format!("/apps/{APP_ID}/channels")
}

/// A client subscribed to every channel in `channels` (public names only).
async fn subscriber(srv: &TestServer, channels: &[&str]) -> Client {
    let mut c = srv.client().await;
    for ch in channels {
        let r = c.subscribe(ch).await;
        assert_eq!(r["event"], "pusher_internal:subscription_succeeded", "{r}");
    }
    c
}

/// A client in presence channel `channel` as `user_id` (raw JSON for the id, e.g. `"\"1\""`).
async fn presence_member(srv: &TestServer, channel: &str, user_id_json: &str) -> Client {
    let mut c = srv.client().await;
    let cd = format!(r#"{{"user_id":{user_id_json},"user_info":{{"n":1}}}}"#);
    let r = c.subscribe_presence(channel, &cd).await;
    assert_eq!(r["event"], "pusher_internal:subscription_succeeded", "{r}");
    c
}

/// A client signed in as `user_id`.
async fn signed_in(srv: &TestServer, user_id: &str) -> Client {
    let mut c = srv.client().await;
    let user_data = json!({"id": user_id}).to_string();
    let auth = user_auth(&c.socket_id, &user_data);
    c.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})).await;
    let ok = c.recv_event("pusher:signin_success").await;
    assert_eq!(ok["data"]["user_data"], user_data.as_str());
    c
}

/// Round-trips a ping so every earlier frame of this client has been processed by the server.
async fn sync(c: &mut Client) {
    c.send(json!({"event": "pusher:ping", "data": {}})).await;
    c.recv_event("pusher:pong").await;
}

async fn post_raw(srv: &TestServer, path: &str, body: &[u8]) -> Resp {
    let q = srv.api().signed_query("POST", path, &[], body, now());
    raw_http(srv.addr, "POST", &format!("{path}?{q}"), body).await
}

fn ev(name: &str, ch: &str, data: &str) -> Value {
    json!({"event": name, "channel": ch, "data": data})
}

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

#[tokio::test]
async fn trigger_unknown_info_attribute_is_400() {
    let srv = start().await;
    let r = srv.api().trigger(json!({"name": "e", "channels": ["a"], "data": "x", "info": "members"})).await;
    assert_eq!(r.status, 400, "{r:?}");
}

#[tokio::test]
async fn invalid_socket_id_is_400_and_nothing_is_delivered() {
    let srv = start().await;
    let mut c = subscriber(&srv, &["room"]).await;
    for sid in ["abc", "1.", ".1", "1.2.3", "1-2", "a.b"] {
        let r = srv.api().trigger(json!({"name": "e", "channels": ["room"], "data": "x", "socket_id": sid})).await;
        assert_eq!(r.status, 400, "socket_id {sid}: {r:?}");
        assert!(!r.body.trim().is_empty());
    }
    let r = srv.api().trigger(json!({"name": "e", "channels": ["room"], "data": "x", "socket_id": 123})).await;
    assert_eq!(r.status, 400, "{r:?}");
    c.expect_silence().await;
}

#[tokio::test]
async fn more_than_100_channels_is_400_and_100_is_ok() {
    let srv = start().await;
    let names: Vec<String> = (0..101).map(|i| format!("ch-{i}")).collect();
    let r = srv.api().trigger(json!({"name": "e", "channels": names, "data": "x"})).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = srv.api().trigger(json!({"name": "e", "channels": names[..100], "data": "x"})).await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn empty_channels_list_is_400() {
    let srv = start().await;
    let r = srv.api().trigger(json!({"name": "e", "channels": [], "data": "x"})).await;
    assert_eq!(r.status, 400, "{r:?}");
}

#[tokio::test]
async fn data_of_10241_bytes_is_413_and_10240_is_delivered() {
    let srv = start().await;
    let mut c = subscriber(&srv, &["room"]).await;
    let r = srv.api().trigger(json!({"name": "big", "channels": ["room"], "data": "x".repeat(10_241)})).await;
    assert_eq!(r.status, 413, "{r:?}");
    assert!(!r.body.trim().is_empty());
    c.expect_silence().await;
    let data = "x".repeat(10_240);
    let r = srv.api().trigger(json!({"name": "ok", "channels": ["room"], "data": data})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.recv().await, ev("ok", "room", &data));
}

#[tokio::test]
async fn data_limit_counts_utf8_bytes_not_characters() {
    let srv = start().await;
    // 5121 two-byte characters = 10242 bytes.
    let r = srv.api().trigger(json!({"name": "e", "channels": ["room"], "data": "é".repeat(5_121)})).await;
    assert_eq!(r.status, 413, "{r:?}");
    let r = srv.api().trigger(json!({"name": "e", "channels": ["room"], "data": "é".repeat(5_120)})).await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn invalid_channel_names_are_400() {
    let srv = start().await;
    let long = "c".repeat(201);
    for ch in ["has space", "a#b", "#other", "", "bad/slash", "ü", long.as_str()] {
        let r = srv.api().trigger(json!({"name": "e", "channels": [ch], "data": "x"})).await;
        assert_eq!(r.status, 400, "channel {ch:?}: {r:?}");
    }
    // One bad name among good ones fails the whole request.
    let mut c = subscriber(&srv, &["good"]).await;
    let r = srv.api().trigger(json!({"name": "e", "channels": ["good", "bad name"], "data": "x"})).await;
    assert_eq!(r.status, 400, "{r:?}");
    c.expect_silence().await;
    // Every legal character, and exactly 200 characters, are accepted.
    let r =
        srv.api().trigger(json!({"name": "e", "channels": ["A-Za-z0-9_=@,.;", "c".repeat(200)], "data": "x"})).await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn event_name_of_201_chars_is_400_and_200_is_ok() {
    let srv = start().await;
    let r = srv.api().trigger(json!({"name": "e".repeat(201), "channels": ["a"], "data": "x"})).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = srv.api().trigger(json!({"name": "", "channels": ["a"], "data": "x"})).await;
    assert_eq!(r.status, 400, "{r:?}");
    let mut c = subscriber(&srv, &["a"]).await;
    let name = "e".repeat(200);
    let r = srv.api().trigger(json!({"name": name, "channels": ["a"], "data": "x"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.recv().await, ev(&name, "a", "x"));
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
async fn reserved_event_name_prefixes_are_400() {
    let srv = start().await;
    let mut c = subscriber(&srv, &["a"]).await;
    for name in ["pusher:foo", "pusher_internal:subscription_succeeded"] {
        let r = srv.api().trigger(json!({"name": name, "channels": ["a"], "data": "x"})).await;
        assert_eq!(r.status, 400, "name {name}: {r:?}");
    }
    c.expect_silence().await;
}

#[tokio::test]
async fn encrypted_channel_with_another_channel_is_400_but_alone_is_ok() {
    let srv = start().await;
    let r = srv.api().trigger(json!({"name": "e", "channels": ["private-encrypted-x", "a"], "data": "x"})).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = srv.api().trigger(json!({"name": "e", "channels": ["a", "private-encrypted-x"], "data": "x"})).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = srv.api().trigger(json!({"name": "e", "channels": ["private-encrypted-x"], "data": "x"})).await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn malformed_json_is_400() {
    let srv = start().await;
    for body in [&b"{not json"[..], b"", b"[1,2]", b"\"str\"", b"{\"name\":"] {
        let r = post_raw(&srv, &events_path(), body).await;
        assert_eq!(r.status, 400, "body {:?}: {r:?}", String::from_utf8_lossy(body));
        assert!(!r.body.trim().is_empty());
    }
}

#[tokio::test]
async fn missing_name_data_or_channels_is_400() {
    let srv = start().await;
    for body in [
        json!({"channels": ["a"], "data": "x"}),
        json!({"name": "e", "channels": ["a"]}),
        json!({"name": "e", "data": "x"}),
        json!({"name": 5, "channels": ["a"], "data": "x"}),
        json!({"name": "e", "channels": "a", "data": "x"}),
        json!({"name": "e", "channels": [1], "data": "x"}),
    ] {
        let r = srv.api().trigger(body.clone()).await;
        assert_eq!(r.status, 400, "body {body}: {r:?}");
    }
}

#[tokio::test]
async fn body_over_max_http_body_kb_is_413() {
    let mut cfg = test_config();
    cfg.max_http_body_kb = 1;
    let srv = start_with(cfg).await;
    // Data within the 10 KB event limit, but the whole body is over 1 KiB.
    let r = srv.api().trigger(json!({"name": "e", "channels": ["a"], "data": "x".repeat(2_000)})).await;
    assert_eq!(r.status, 413, "{r:?}");
    let r = srv.api().trigger(json!({"name": "e", "channels": ["a"], "data": "x".repeat(500)})).await;
    assert_eq!(r.status, 200, "{r:?}");
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
async fn malformed_server_to_user_channel_names_are_400() {
    let srv = start().await;
    for ch in ["#server-to-user-", "#server-to-user-a b", "#server-to-users", "#private-x"] {
        let r = srv.api().trigger(json!({"name": "e", "channels": [ch], "data": "x"})).await;
        assert_eq!(r.status, 400, "channel {ch:?}: {r:?}");
    }
}

#[tokio::test]
async fn null_data_or_channel_counts_as_missing() {
    let srv = start().await;
    let r = srv.api().trigger(json!({"name": "e", "channels": ["a"], "data": null})).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = srv.api().trigger(json!({"name": "e", "channel": null, "data": "x"})).await;
    assert_eq!(r.status, 400, "{r:?}");
}

// ---------------------------------------------------------------- POST /batch_events

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

// ---------------------------------------------------------------- terminate_connections

#[tokio::test]
async fn terminate_connections_closes_the_users_connections_with_4009() {
    let srv = start().await;
    let mut u1a = signed_in(&srv, "u1").await;
    let mut u1b = signed_in(&srv, "u1").await;
    let mut u2 = signed_in(&srv, "u2").await;
    // Same user id through presence only, never signed in: not affected (8.4).
    let mut presence_only = presence_member(&srv, "presence-room", r#""u1""#).await;
    let r = srv.api().post(&format!("/apps/{APP_ID}/users/u1/terminate_connections"), &json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({}));
    for c in [&mut u1a, &mut u1b] {
        let err = c.recv_event("pusher:error").await;
        assert_eq!(err["data"]["code"], 4009, "{err}");
        assert_eq!(c.closed().await.code, 4009);
    }
    sync(&mut u2).await;
    sync(&mut presence_only).await;
    let r = srv.api().get(&format!("{}/presence-room/users", channels_path()), &[]).await;
    assert_eq!(r.json(), json!({"users": [{"id": "u1"}]}));
}

#[tokio::test]
async fn terminate_connections_of_unknown_user_is_empty_object() {
    let srv = start().await;
    let mut other = signed_in(&srv, "u2").await;
    let r = srv.api().post(&format!("/apps/{APP_ID}/users/nobody/terminate_connections"), &json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({}));
    sync(&mut other).await;
}

#[tokio::test]
async fn terminate_connections_python_alias_path_works() {
    let srv = start().await;
    let mut u1 = signed_in(&srv, "u1").await;
    let mut u2 = signed_in(&srv, "u2").await;
    // pusher-http-python <= 3.3.3 signs and requests the path without /apps/{id}.
    let r = srv.api().post("/users/u1/terminate_connections", &json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({}));
    assert_eq!(u1.closed().await.code, 4009);
    sync(&mut u2).await;
}

#[tokio::test]
async fn terminate_connections_user_id_is_percent_decoded() {
    let srv = start().await;
    let mut u = signed_in(&srv, "u@1").await;
    // Sent and signed with the id percent-encoded; looked up decoded.
    let r = srv.api().post(&format!("/apps/{APP_ID}/users/u%401/terminate_connections"), &json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(u.closed().await.code, 4009);
    // Raw `@` in the path (what Node/Go send) works as well.
    let mut u = signed_in(&srv, "u@1").await;
    let r = srv.api().post(&format!("/apps/{APP_ID}/users/u@1/terminate_connections"), &json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(u.closed().await.code, 4009);
}

#[tokio::test]
async fn terminate_connections_python_alias_requires_a_valid_signature() {
    let srv = start().await;
    let mut u1 = signed_in(&srv, "u1").await;
    let mut api = srv.api();
    api.secret = "wrong".into();
    let r = api.post("/users/u1/terminate_connections", &json!({})).await;
    assert_eq!(r.status, 401, "{r:?}");
    let mut api = srv.api();
    api.key = "unknown".into();
    let r = api.post("/users/u1/terminate_connections", &json!({})).await;
    assert_eq!(r.status, 401, "{r:?}");
    sync(&mut u1).await;
}

// ---------------------------------------------------------------- transport

/// Reads one HTTP/1.1 response (Content-Length or chunked) from a kept-alive connection.
async fn read_response(s: &mut TcpStream) -> Resp {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let body = &buf[end + 4..];
            if let Some(len) = head.lines().find_map(|l| l.strip_prefix("content-length:")) {
                let len: usize = len.trim().parse().unwrap();
                if body.len() >= len {
                    return parse_response(&buf[..end + 4 + len]);
                }
            } else if body.ends_with(b"0\r\n\r\n") {
                return parse_response(&buf);
            }
        }
        let n = tokio::time::timeout(WAIT, s.read(&mut tmp)).await.expect("response in time").unwrap();
        assert!(n > 0, "connection closed mid-response: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&tmp[..n]);
    }
}

async fn send_keepalive(s: &mut TcpStream, addr: SocketAddr, method: &str, target: &str, body: &[u8]) {
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    s.write_all(&req).await.unwrap();
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let srv = start().await;
    let mut c = subscriber(&srv, &["a"]).await;
    let api = srv.api();
    let mut s = TcpStream::connect(srv.addr).await.unwrap();

    let body = json!({"name": "e", "channels": ["a"], "data": "1"}).to_string().into_bytes();
    let q = api.signed_query("POST", &events_path(), &[], &body, now());
    send_keepalive(&mut s, srv.addr, "POST", &format!("{}?{q}", events_path()), &body).await;
    let r1 = read_response(&mut s).await;
    assert_eq!(r1.status, 200, "{r1:?}");
    assert_eq!(r1.json(), json!({}));

    let q = api.signed_query("GET", &channels_path(), &[], b"", now());
    send_keepalive(&mut s, srv.addr, "GET", &format!("{}?{q}", channels_path()), b"").await;
    let r2 = read_response(&mut s).await;
    assert_eq!(r2.status, 200, "{r2:?}");
    assert_eq!(r2.json(), json!({"channels": {"a": {}}}));

    // An error response does not end the connection either.
    send_keepalive(&mut s, srv.addr, "GET", &channels_path(), b"").await;
    let r3 = read_response(&mut s).await;
    assert_eq!(r3.status, 401, "{r3:?}");
    let q = api.signed_query("GET", &channels_path(), &[], b"", now());
    send_keepalive(&mut s, srv.addr, "GET", &format!("{}?{q}", channels_path()), b"").await;
    assert_eq!(read_response(&mut s).await.status, 200);

    assert_eq!(c.recv().await, ev("e", "a", "1"));
}

// ---------------------------------------------------------------- isolation between apps

fn two_apps() -> herald::config::Config {
    let mut c = test_config();
    c.apps.push(app("app-b", "key-b", "secret-b"));
    c
}

fn api_b(srv: &TestServer) -> Api {
    Api { addr: srv.addr, app_id: "app-b".into(), key: "key-b".into(), secret: "secret-b".into() }
}

#[tokio::test]
async fn events_of_one_app_never_reach_another_apps_subscribers() {
    let srv = start_with(two_apps()).await;
    let mut on_a = subscriber(&srv, &["x"]).await;
    let mut on_b = Client::connect_established(&srv.ws_url("key-b")).await;
    assert_eq!(on_b.subscribe("x").await["event"], "pusher_internal:subscription_succeeded");

    let r = srv.api().trigger(json!({"name": "from-a", "channels": ["x"], "data": "a"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(on_a.recv().await, ev("from-a", "x", "a"));
    on_b.expect_silence().await;

    let r = api_b(&srv).trigger(json!({"name": "from-b", "channels": ["x"], "data": "b"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(on_b.recv().await, ev("from-b", "x", "b"));
    on_a.expect_silence().await;

    // Batches too.
    let r = srv.api().post(&batch_path(), &json!({"batch": [{"channel": "x", "name": "batched", "data": "a"}]})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(on_a.recv().await, ev("batched", "x", "a"));
    on_b.expect_silence().await;
}

#[tokio::test]
async fn channel_queries_are_per_app() {
    let srv = start_with(two_apps()).await;
    let _on_a = subscriber(&srv, &["only-a", "shared"]).await;
    let mut on_b = Client::connect_established(&srv.ws_url("key-b")).await;
    on_b.subscribe("shared").await;

    let r = api_b(&srv).get("/apps/app-b/channels", &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"channels": {"shared": {}}}));
    let r = srv.api().get(&channels_path(), &[("info", "subscription_count")]).await;
    assert_eq!(
        r.json(),
        json!({"channels": {"only-a": {"subscription_count": 1}, "shared": {"subscription_count": 1}}})
    );
    let r = api_b(&srv).get("/apps/app-b/channels/only-a", &[]).await;
    assert_eq!(r.json(), json!({"occupied": false}));
}

#[tokio::test]
async fn terminate_connections_is_per_app() {
    let srv = start_with(two_apps()).await;
    let mut on_a = signed_in(&srv, "u1").await;
    // Same user id signed in on app B.
    let mut on_b = Client::connect_established(&srv.ws_url("key-b")).await;
    let user_data = json!({"id": "u1"}).to_string();
    let auth = format!("key-b:{}", hmac_hex("secret-b", &format!("{}::user::{user_data}", on_b.socket_id)));
    on_b.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})).await;
    on_b.recv_event("pusher:signin_success").await;

    let r = api_b(&srv).post("/apps/app-b/users/u1/terminate_connections", &json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(on_b.closed().await.code, 4009);
    sync(&mut on_a).await;
}
