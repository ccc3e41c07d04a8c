//! Connection lifecycle over a real socket: handshake, admission codes (PROTOCOL.md 2.2),
//! liveness (2.7), and bad input that must not take the server down.

mod support;

use std::collections::HashSet;

use serde_json::json;
use support::*;

#[tokio::test]
async fn connection_established_is_first_frame_with_string_data() {
    let srv = start().await;
    let mut ws = Client::connect(&srv.ws_url(KEY)).await;
    let first = next_json(&mut ws).await.unwrap();
    assert_eq!(first["event"], "pusher:connection_established");
    let data = first["data"].as_str().expect("data must be a JSON-encoded string");
    let data: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(data["activity_timeout"], 120);
    let sid = data["socket_id"].as_str().unwrap();
    let (a, b) = sid.split_once('.').unwrap();
    assert!(!a.is_empty() && a.bytes().all(|c| c.is_ascii_digit()), "{sid}");
    assert!(!b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()), "{sid}");
}

#[tokio::test]
async fn socket_ids_are_unique() {
    let srv = start().await;
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let c = srv.client().await;
        assert!(seen.insert(c.socket_id.clone()), "duplicate {}", c.socket_id);
    }
}

#[tokio::test]
async fn pusher_ping_gets_pong_with_string_data() {
    let srv = start().await;
    let mut c = srv.client().await;
    c.send(json!({"event": "pusher:ping", "data": {}})).await;
    let pong = c.recv().await;
    assert_eq!(pong, json!({"event": "pusher:pong", "data": "{}"}));
    // pusher-websocket-java sends ping without data
    c.send_raw(r#"{"event":"pusher:ping"}"#).await;
    assert_eq!(c.recv().await["event"], "pusher:pong");
}

#[tokio::test]
async fn unknown_app_key_closes_4001_after_error() {
    let srv = start().await;
    let mut ws = Client::connect(&srv.ws_url("no-such-key")).await;
    let err = next_json(&mut ws).await.unwrap();
    assert_eq!(err["event"], "pusher:error");
    assert_eq!(err["data"]["code"], 4001);
    assert_eq!(closed(&mut ws).await.code, 4001);
}
