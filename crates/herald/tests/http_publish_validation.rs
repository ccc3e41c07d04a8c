//! `POST /apps/{id}/events` refused (PROTOCOL.md 10.3): every malformed or out-of-limit request
//! is a 400 or 413 and delivers nothing; each limit is also shown accepted at its exact edge.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use serde_json::json;
use support::*;

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
