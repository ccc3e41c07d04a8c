//! Client events over a real socket (PROTOCOL.md 7): acceptance rules in order, relay shape
//! (data as a JSON string, `user_id` on presence only), no echo, rate and size limits.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use serde_json::{json, Value};
use support::*;

fn error(code: Option<u16>, message: &str) -> Value {
    json!({"event": "pusher:error", "data": {"code": code, "message": message}})
}

/// Two clients subscribed to the same private channel.
async fn private_pair(srv: &TestServer, channel: &str) -> (Client, Client) {
    let mut a = srv.client().await;
    let mut b = srv.client().await;
    assert_eq!(a.subscribe_private(channel).await["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(b.subscribe_private(channel).await["event"], "pusher_internal:subscription_succeeded");
    (a, b)
}

#[tokio::test]
async fn object_data_is_relayed_as_compact_json_string_without_echo() {
    let srv = start().await;
    let (mut sender, mut receiver) = private_pair(&srv, "private-chat").await;
    sender
        .send_raw(r#"{"event":"client-typing","channel":"private-chat","data":{ "typing" : true, "n": [1, 2] }}"#)
        .await;
    assert_eq!(
        receiver.recv().await,
        json!({"event": "client-typing", "channel": "private-chat", "data": "{\"typing\":true,\"n\":[1,2]}"})
    );
    sender.expect_silence().await;
}

#[tokio::test]
async fn string_data_is_relayed_unchanged() {
    let srv = start().await;
    let (mut sender, mut receiver) = private_pair(&srv, "private-chat").await;
    let data = r#"{"typing": true}"#;
    sender.send(json!({"event": "client-typing", "channel": "private-chat", "data": data})).await;
    assert_eq!(receiver.recv().await, json!({"event": "client-typing", "channel": "private-chat", "data": data}));
    sender.send(json!({"event": "client-text", "channel": "private-chat", "data": "plain text"})).await;
    assert_eq!(receiver.recv().await["data"], "plain text");
}

#[tokio::test]
async fn private_channel_relay_has_no_user_id_even_when_signed_in() {
    let srv = start().await;
    let (mut sender, mut receiver) = private_pair(&srv, "private-chat").await;
    assert_eq!(sender.signin(r#"{"id":"u-1"}"#).await["event"], "pusher:signin_success");
    sender.send(json!({"event": "client-x", "channel": "private-chat", "data": {}})).await;
    let got = receiver.recv().await;
    assert_eq!(got, json!({"event": "client-x", "channel": "private-chat", "data": "{}"}));
    assert!(got.get("user_id").is_none());
}

#[tokio::test]
async fn presence_relay_carries_sender_user_id_from_membership() {
    let srv = start().await;
    let mut ada = srv.client().await;
    let mut bob = srv.client().await;
    ada.subscribe_presence("presence-room", r#"{"user_id":"u-1","user_info":{"name":"Ada"}}"#).await;
    bob.subscribe_presence("presence-room", r#"{"user_id":"u-2"}"#).await;
    ada.recv_event("pusher_internal:member_added").await;
    // a user_id in the payload is never trusted
    ada.send(
        json!({"event": "client-typing", "channel": "presence-room", "data": {"typing": true}, "user_id": "forged"}),
    )
    .await;
    assert_eq!(
        bob.recv().await,
        json!({"event": "client-typing", "channel": "presence-room", "data": "{\"typing\":true}", "user_id": "u-1"})
    );
    ada.expect_silence().await;
}

#[tokio::test]
async fn other_connections_of_the_same_user_do_receive_the_event() {
    let srv = start().await;
    let cd = r#"{"user_id":"u-1"}"#;
    let mut ada1 = srv.client().await;
    let mut ada2 = srv.client().await;
    ada1.subscribe_presence("presence-room", cd).await;
    ada2.subscribe_presence("presence-room", cd).await;
    ada1.send(json!({"event": "client-sync", "channel": "presence-room", "data": "s"})).await;
    assert_eq!(
        ada2.recv().await,
        json!({"event": "client-sync", "channel": "presence-room", "data": "s", "user_id": "u-1"})
    );
    ada1.expect_silence().await;
}

#[tokio::test]
async fn client_event_on_public_channel_is_refused() {
    let srv = start().await;
    let mut a = srv.client().await;
    let mut b = srv.client().await;
    a.subscribe("public-chat").await;
    b.subscribe("public-chat").await;
    a.send(json!({"event": "client-x", "channel": "public-chat", "data": {}})).await;
    assert_eq!(a.recv().await, error(None, "Client events are only allowed on private and presence channels"));
    b.expect_silence().await;
    a.assert_alive().await;
}

#[tokio::test]
async fn client_event_on_encrypted_channel_is_refused() {
    let srv = start().await;
    let (mut a, mut b) = private_pair(&srv, "private-encrypted-vault").await;
    a.send(json!({"event": "client-x", "channel": "private-encrypted-vault", "data": {}})).await;
    assert_eq!(a.recv().await, error(None, "Client events are only allowed on private and presence channels"));
    b.expect_silence().await;
}

#[tokio::test]
async fn client_event_on_unsubscribed_channel_is_refused() {
    let srv = start().await;
    let mut outsider = srv.client().await;
    let mut member = srv.client().await;
    member.subscribe_private("private-chat").await;
    outsider.send(json!({"event": "client-x", "channel": "private-chat", "data": {}})).await;
    assert_eq!(outsider.recv().await, error(None, "Not subscribed to private-chat"));
    member.expect_silence().await;
    outsider.assert_alive().await;
}

#[tokio::test]
async fn client_event_after_unsubscribe_is_refused() {
    let srv = start().await;
    let (mut a, mut b) = private_pair(&srv, "private-chat").await;
    a.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "private-chat"}})).await;
    a.send(json!({"event": "client-x", "channel": "private-chat", "data": {}})).await;
    assert_eq!(a.recv().await, error(None, "Not subscribed to private-chat"));
    b.expect_silence().await;
}

#[tokio::test]
async fn client_events_disabled_for_app_are_refused() {
    let srv = start_with(config_with_limits(|l| l.enable_client_messages = false)).await;
    let (mut a, mut b) = private_pair(&srv, "private-chat").await;
    a.send(json!({"event": "client-x", "channel": "private-chat", "data": {}})).await;
    assert_eq!(a.recv().await, error(None, "Client events are not enabled for this app"));
    b.expect_silence().await;
    a.assert_alive().await;
}

#[tokio::test]
async fn disabled_check_comes_before_channel_type_check() {
    // 7.1: rule 2 (app flag) is checked before rule 3 (channel type)
    let srv = start_with(config_with_limits(|l| l.enable_client_messages = false)).await;
    let mut a = srv.client().await;
    a.send(json!({"event": "client-x", "channel": "public-chat", "data": {}})).await;
    assert_eq!(a.recv().await, error(None, "Client events are not enabled for this app"));
}

#[tokio::test]
async fn client_event_without_channel_is_an_error() {
    let srv = start().await;
    let mut a = srv.client().await;
    a.send(json!({"event": "client-x", "data": {}})).await;
    let err = a.recv_error().await;
    assert_eq!(err["code"], Value::Null);
    a.assert_alive().await;
}

#[tokio::test]
async fn eleventh_event_within_a_second_gets_4301_and_connection_stays_open() {
    let srv = start_with(config_with_limits(|l| l.max_client_events_per_second = 10)).await;
    let (mut sender, mut receiver) = private_pair(&srv, "private-chat").await;
    const SENT: usize = 25;
    for i in 0..SENT {
        sender.send(json!({"event": "client-n", "channel": "private-chat", "data": {"i": i}})).await;
    }
    // Everything the server produced for these frames precedes the pong.
    sender.send(json!({"event": "pusher:ping", "data": {}})).await;
    let mut errors = 0;
    loop {
        let f = sender.recv().await;
        if f["event"] == "pusher:pong" {
            break;
        }
        assert_eq!(f, error(Some(4301), "Client event rate limit exceeded (10 per second)"));
        errors += 1;
    }
    receiver.send(json!({"event": "pusher:ping", "data": {}})).await;
    let mut relayed = Vec::new();
    loop {
        let f = receiver.recv().await;
        if f["event"] == "pusher:pong" {
            break;
        }
        assert_eq!(f["event"], "client-n", "{f}");
        relayed.push(data_of(&f)["i"].as_u64().unwrap());
    }
    // The first 10 always pass; at most one window boundary can fall inside the burst.
    assert_eq!(relayed[..10], (0..10).collect::<Vec<u64>>()[..]);
    assert!(relayed.len() <= 20, "relayed {}", relayed.len());
    assert!(errors >= 5, "expected rate-limit errors, got {errors}");
    assert_eq!(relayed.len() + errors, SENT);
    sender.assert_alive().await;
}

#[tokio::test]
async fn data_over_payload_limit_is_refused() {
    let srv = start_with(config_with_limits(|l| l.max_event_payload_in_kb = 1)).await;
    let (mut a, mut b) = private_pair(&srv, "private-chat").await;
    a.send(json!({"event": "client-big", "channel": "private-chat", "data": "x".repeat(1025)})).await;
    assert_eq!(a.recv().await, error(None, "Client event data exceeds 1024 bytes"));
    b.expect_silence().await;
    // exactly at the limit is fine
    a.send(json!({"event": "client-ok", "channel": "private-chat", "data": "x".repeat(1024)})).await;
    assert_eq!(b.recv().await["event"], "client-ok");
}
