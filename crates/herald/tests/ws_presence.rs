//! Presence channels over a real socket (PROTOCOL.md 5.5, 5.6, 6.6 vectors B/C/F): member
//! lists, member_added / member_removed exactly once per user, limits, channel_data errors.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use serde_json::{json, Value};
use support::*;

const ROOM: &str = "presence-room";
const ADA: &str = r#"{"user_id":"u-1","user_info":{"name":"Ada"}}"#;
const BOB: &str = r#"{"user_id":"u-2","user_info":{"name":"Bob"}}"#;

/// The decoded `presence` object of a `subscription_succeeded` frame (data must be a string).
fn presence_of(frame: &Value, channel: &str) -> Value {
    assert_eq!(frame["event"], "pusher_internal:subscription_succeeded", "{frame}");
    assert_eq!(frame["channel"], channel, "{frame}");
    assert!(frame["data"].is_string(), "data must be double-encoded: {frame}");
    data_of(frame)["presence"].clone()
}

fn sorted_ids(presence: &Value) -> Vec<String> {
    let mut ids: Vec<String> =
        presence["ids"].as_array().unwrap().iter().map(|v| v.as_str().expect("ids are strings").to_owned()).collect();
    ids.sort();
    ids
}

fn error(message: &str) -> Value {
    json!({"event": "pusher:error", "data": {"code": null, "message": message}})
}

fn member_added(channel: &str, frame: &Value) -> Value {
    assert_eq!(frame["event"], "pusher_internal:member_added", "{frame}");
    assert_eq!(frame["channel"], channel);
    assert!(frame["data"].is_string(), "{frame}");
    data_of(frame)
}

#[tokio::test]
async fn first_member_gets_list_with_itself() {
    let srv = start().await;
    let mut c = srv.client().await;
    let p = presence_of(&c.subscribe_presence(ROOM, ADA).await, ROOM);
    assert_eq!(p, json!({"ids": ["u-1"], "hash": {"u-1": {"name": "Ada"}}, "count": 1}));
}

#[tokio::test]
async fn second_member_gets_full_list_and_first_gets_member_added() {
    let srv = start().await;
    let mut ada = srv.client().await;
    let mut bob = srv.client().await;
    ada.subscribe_presence(ROOM, ADA).await;
    let p = presence_of(&bob.subscribe_presence(ROOM, BOB).await, ROOM);
    assert_eq!(sorted_ids(&p), ["u-1", "u-2"]);
    assert_eq!(p["hash"], json!({"u-1": {"name": "Ada"}, "u-2": {"name": "Bob"}}));
    assert_eq!(p["count"], 2);

    let added = ada.recv().await;
    assert_eq!(member_added(ROOM, &added), json!({"user_id": "u-2", "user_info": {"name": "Bob"}}));
    // the joining connection never hears about itself
    bob.expect_silence().await;
}

#[tokio::test]
async fn php_escaped_channel_data_is_accepted_and_user_info_forwarded() {
    // PHP json_encode escapes `/` and non-ASCII; the signature covers that exact text.
    let srv = start().await;
    let mut c = srv.client().await;
    let cd = r#"{"user_id":"u-1","user_info":{"name":"Ad\u00e1","url":"http:\/\/x"}}"#;
    let p = presence_of(&c.subscribe_presence(ROOM, cd).await, ROOM);
    assert_eq!(p, json!({"ids": ["u-1"], "hash": {"u-1": {"name": "Adá", "url": "http://x"}}, "count": 1}));
}

#[tokio::test]
async fn python_spaced_channel_data_signed_as_sent_is_accepted() {
    // vector C style: the signature covers the exact string, spaces included
    let srv = start().await;
    let mut c = srv.client().await;
    let spaced = r#"{"user_id": "u-1", "user_info": {"name": "Ada"}}"#;
    let p = presence_of(&c.subscribe_presence(ROOM, spaced).await, ROOM);
    assert_eq!(p, json!({"ids": ["u-1"], "hash": {"u-1": {"name": "Ada"}}, "count": 1}));
}

#[tokio::test]
async fn channel_data_signature_over_reserialized_string_is_refused() {
    // signed over the compact form, but the spaced form is sent: must not verify
    let srv = start().await;
    let mut c = srv.client().await;
    let spaced = r#"{"user_id": "u-1", "user_info": {"name": "Ada"}}"#;
    let auth = channel_auth(&c.socket_id, ROOM, Some(ADA));
    c.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": ROOM, "channel_data": spaced}})).await;
    let err = c.recv_error().await;
    let expected =
        format!("Invalid signature: Expected HMAC SHA256 hex digest of {}:{ROOM}:{spaced}, but got", c.socket_id);
    assert!(err["message"].as_str().unwrap().starts_with(&expected), "{err}");
}

#[tokio::test]
async fn member_without_user_info_has_null_in_hash() {
    let srv = start().await;
    let mut c = srv.client().await;
    let p = presence_of(&c.subscribe_presence(ROOM, r#"{"user_id":"anon"}"#).await, ROOM);
    assert_eq!(p, json!({"ids": ["anon"], "hash": {"anon": null}, "count": 1}));
    let hash = p["hash"].as_object().unwrap();
    assert!(hash.contains_key("anon"), "the key must not be dropped");
}

#[tokio::test]
async fn member_added_without_user_info_omits_it() {
    let srv = start().await;
    let mut first = srv.client().await;
    let mut anon = srv.client().await;
    first.subscribe_presence(ROOM, ADA).await;
    anon.subscribe_presence(ROOM, r#"{"user_id":"anon"}"#).await;
    assert_eq!(member_added(ROOM, &first.recv().await), json!({"user_id": "anon"}));
}

#[tokio::test]
async fn numeric_user_id_becomes_a_string() {
    let srv = start().await;
    let mut watcher = srv.client().await;
    let mut c = srv.client().await;
    watcher.subscribe_presence(ROOM, BOB).await;
    let p =
        presence_of(&c.subscribe_presence(ROOM, r#"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#).await, ROOM);
    assert_eq!(sorted_ids(&p), ["10", "u-2"]);
    assert_eq!(p["hash"]["10"], json!({"name": "Mr. Channels"}));
    assert_eq!(
        member_added(ROOM, &watcher.recv().await),
        json!({"user_id": "10", "user_info": {"name": "Mr. Channels"}})
    );
    let users = srv.api().get(&format!("/apps/{APP_ID}/channels/{ROOM}/users"), &[]).await;
    let mut ids: Vec<Value> = users.json()["users"].as_array().unwrap().iter().map(|u| u["id"].clone()).collect();
    ids.sort_by_key(|v| v.to_string());
    assert_eq!(ids, [json!("10"), json!("u-2")]);
}

#[tokio::test]
async fn second_connection_of_same_user_adds_no_member() {
    let srv = start().await;
    let mut watcher = srv.client().await;
    let mut ada1 = srv.client().await;
    let mut ada2 = srv.client().await;
    watcher.subscribe_presence(ROOM, BOB).await;
    ada1.subscribe_presence(ROOM, ADA).await;
    assert_eq!(member_added(ROOM, &watcher.recv().await)["user_id"], "u-1");

    let p = presence_of(&ada2.subscribe_presence(ROOM, ADA).await, ROOM);
    assert_eq!(p["count"], 2, "one member per user: {p}");
    assert_eq!(sorted_ids(&p), ["u-1", "u-2"]);
    watcher.expect_silence().await;
    ada1.expect_silence().await;
    ada2.expect_silence().await;
}

#[tokio::test]
async fn member_removed_only_when_last_connection_of_user_leaves() {
    let srv = start().await;
    let mut watcher = srv.client().await;
    let mut ada1 = srv.client().await;
    let mut ada2 = srv.client().await;
    watcher.subscribe_presence(ROOM, BOB).await;
    ada1.subscribe_presence(ROOM, ADA).await;
    ada2.subscribe_presence(ROOM, ADA).await;
    watcher.recv_event("pusher_internal:member_added").await;

    // first connection leaves by unsubscribing: the user is still present
    ada1.send(json!({"event": "pusher:unsubscribe", "data": {"channel": ROOM}})).await;
    ada1.expect_silence().await;
    watcher.expect_silence().await;

    // last connection leaves by dropping the socket
    drop(ada2);
    let removed = watcher.recv().await;
    assert_eq!(removed["event"], "pusher_internal:member_removed", "{removed}");
    assert_eq!(removed["channel"], ROOM);
    assert!(removed["data"].is_string());
    assert_eq!(data_of(&removed), json!({"user_id": "u-1"}));
    watcher.expect_silence().await;
}

#[tokio::test]
async fn member_removed_when_client_closes_cleanly() {
    let srv = start().await;
    let mut watcher = srv.client().await;
    let mut ada = srv.client().await;
    watcher.subscribe_presence(ROOM, BOB).await;
    ada.subscribe_presence(ROOM, ADA).await;
    watcher.recv_event("pusher_internal:member_added").await;
    ada.ws.close(None).await.unwrap();
    assert_eq!(
        watcher.recv().await,
        json!({"event": "pusher_internal:member_removed", "channel": ROOM, "data": "{\"user_id\":\"u-1\"}"})
    );
}

#[tokio::test]
async fn member_removed_on_unsubscribe_of_single_connection() {
    let srv = start().await;
    let mut watcher = srv.client().await;
    let mut ada = srv.client().await;
    watcher.subscribe_presence(ROOM, BOB).await;
    ada.subscribe_presence(ROOM, ADA).await;
    watcher.recv_event("pusher_internal:member_added").await;
    ada.send(json!({"event": "pusher:unsubscribe", "data": {"channel": ROOM}})).await;
    let removed = watcher.recv().await;
    assert_eq!(
        removed,
        json!({"event": "pusher_internal:member_removed", "channel": ROOM, "data": "{\"user_id\":\"u-1\"}"})
    );
    // the list a newcomer sees no longer has u-1
    let mut late = srv.client().await;
    let p = presence_of(&late.subscribe_presence(ROOM, r#"{"user_id":"u-3"}"#).await, ROOM);
    assert_eq!(sorted_ids(&p), ["u-2", "u-3"]);
}

#[tokio::test]
async fn resubscribe_to_presence_resends_member_list_without_member_added() {
    let srv = start().await;
    let mut watcher = srv.client().await;
    let mut ada = srv.client().await;
    watcher.subscribe_presence(ROOM, BOB).await;
    ada.subscribe_presence(ROOM, ADA).await;
    watcher.recv_event("pusher_internal:member_added").await;
    let p = presence_of(&ada.subscribe_presence(ROOM, ADA).await, ROOM);
    assert_eq!(p["count"], 2);
    watcher.expect_silence().await;
}

#[tokio::test]
async fn presence_member_limit_refuses_new_user_but_accepts_existing_users_connection() {
    let srv = start_with(config_with_limits(|l| l.max_presence_members_per_channel = 2)).await;
    let mut a = srv.client().await;
    let mut b = srv.client().await;
    let mut c = srv.client().await;
    let mut a2 = srv.client().await;
    assert_eq!(presence_of(&a.subscribe_presence("presence-x", ADA).await, "presence-x")["count"], 1);
    assert_eq!(presence_of(&b.subscribe_presence("presence-x", BOB).await, "presence-x")["count"], 2);
    assert_eq!(
        c.subscribe_presence("presence-x", r#"{"user_id":"u-3"}"#).await,
        error("Presence channel presence-x is full (limit 2 members)")
    );
    c.assert_alive().await;
    assert_eq!(presence_of(&a2.subscribe_presence("presence-x", ADA).await, "presence-x")["count"], 2);
}

#[tokio::test]
async fn presence_member_limit_frees_up_when_a_member_leaves() {
    let srv = start_with(config_with_limits(|l| l.max_presence_members_per_channel = 1)).await;
    let mut a = srv.client().await;
    let mut b = srv.client().await;
    a.subscribe_presence("presence-x", ADA).await;
    assert_eq!(
        b.subscribe_presence("presence-x", BOB).await,
        error("Presence channel presence-x is full (limit 1 members)")
    );
    drop(a);
    assert!(eventually(WAIT, || srv.server.hub().connection_count() == 1).await);
    assert_eq!(presence_of(&b.subscribe_presence("presence-x", BOB).await, "presence-x")["count"], 1);
}

#[tokio::test]
async fn user_info_over_1kb_is_refused() {
    let srv = start().await;
    let mut c = srv.client().await;
    let big = "x".repeat(1100);
    let cd = json!({"user_id": "u-1", "user_info": {"bio": big}}).to_string();
    assert_eq!(c.subscribe_presence(ROOM, &cd).await, error("Presence member data exceeds 1024 bytes"));
    // just under the limit is fine
    let ok = json!({"user_id": "u-1", "user_info": {"bio": "x".repeat(1000)}}).to_string();
    assert_eq!(presence_of(&c.subscribe_presence(ROOM, &ok).await, ROOM)["count"], 1);
}

#[tokio::test]
async fn invalid_channel_data_is_refused() {
    let srv = start().await;
    let mut c = srv.client().await;
    for cd in ["not json", r#"{"user_info":{"name":"Ada"}}"#, r#"{"user_id":{"id":1}}"#, r#"{"user_id":""}"#, r#"[1]"#]
    {
        let got = c.subscribe_presence(ROOM, cd).await;
        assert_eq!(got["event"], "pusher:error", "{cd}: {got}");
        assert_eq!(got["data"]["code"], Value::Null);
        let msg = got["data"]["message"].as_str().unwrap();
        assert!(msg.starts_with("Invalid channel_data: "), "{cd}: {msg}");
    }
    c.assert_alive().await;
}

#[tokio::test]
async fn user_id_over_128_characters_is_refused() {
    let srv = start().await;
    let mut c = srv.client().await;
    let cd = json!({"user_id": "u".repeat(129)}).to_string();
    let got = c.subscribe_presence(ROOM, &cd).await;
    assert!(got["data"]["message"].as_str().unwrap().starts_with("Invalid channel_data: "), "{got}");
    let cd = json!({"user_id": "u".repeat(128)}).to_string();
    assert_eq!(presence_of(&c.subscribe_presence(ROOM, &cd).await, ROOM)["count"], 1);
}

#[tokio::test]
async fn presence_without_channel_data_and_without_signin_is_refused() {
    let srv = start().await;
    let mut c = srv.client().await;
    let auth = channel_auth(&c.socket_id, ROOM, None);
    c.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": ROOM}})).await;
    assert_eq!(c.recv().await, error(&format!("channel_data required to subscribe to {ROOM}")));
}

#[tokio::test]
async fn presence_without_channel_data_after_signin_joins_as_signed_in_user() {
    let srv = start().await;
    let mut watcher = srv.client().await;
    watcher.subscribe_presence(ROOM, BOB).await;
    let mut c = srv.client().await;
    let got = c.signin(r#"{"id":"u-1","user_info":{"name":"Ada"}}"#).await;
    assert_eq!(got["event"], "pusher:signin_success");
    // vector F style: signed over "{socket_id}:{channel}"
    let auth = channel_auth(&c.socket_id, ROOM, None);
    c.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": ROOM}})).await;
    let p = presence_of(&c.recv().await, ROOM);
    assert_eq!(sorted_ids(&p), ["u-1", "u-2"]);
    assert_eq!(p["hash"]["u-1"], json!({"name": "Ada"}));
    assert_eq!(member_added(ROOM, &watcher.recv().await), json!({"user_id": "u-1", "user_info": {"name": "Ada"}}));
}

#[tokio::test]
async fn signed_in_user_without_user_info_joins_with_null_info() {
    let srv = start().await;
    let mut c = srv.client().await;
    assert_eq!(c.signin(r#"{"id":"u-9"}"#).await["event"], "pusher:signin_success");
    let auth = channel_auth(&c.socket_id, ROOM, None);
    c.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": ROOM}})).await;
    let p = presence_of(&c.recv().await, ROOM);
    assert_eq!(p, json!({"ids": ["u-9"], "hash": {"u-9": null}, "count": 1}));
}

#[tokio::test]
async fn presence_events_from_api_reach_all_members() {
    let srv = start().await;
    let mut a = srv.client().await;
    let mut b = srv.client().await;
    a.subscribe_presence(ROOM, ADA).await;
    b.subscribe_presence(ROOM, BOB).await;
    a.recv_event("pusher_internal:member_added").await;
    srv.api().trigger(json!({"name": "news", "channel": ROOM, "data": "hi"})).await;
    let expected = json!({"event": "news", "channel": ROOM, "data": "hi"});
    assert_eq!(a.recv().await, expected);
    assert_eq!(b.recv().await, expected);
}
