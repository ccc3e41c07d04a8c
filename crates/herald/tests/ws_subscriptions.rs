//! Subscriptions over a real socket (PROTOCOL.md 5, 6.3, 8.1–8.2): public, private, encrypted,
//! refusals with the hosted error messages, resubscribe, unsubscribe, sign-in and the
//! `#server-to-user-` channel.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use serde_json::{json, Value};
use support::*;

fn succeeded(channel: &str) -> Value {
    json!({"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"})
}

fn error(message: &str) -> Value {
    json!({"event": "pusher:error", "data": {"code": null, "message": message}})
}

#[tokio::test]
async fn public_subscription_succeeds_with_exact_frame() {
    let srv = start().await;
    let mut c = srv.client().await;
    assert_eq!(c.subscribe("my-channel").await, succeeded("my-channel"));
}

#[tokio::test]
async fn public_subscription_without_auth_field_succeeds() {
    // pusher-websocket-java omits `auth` on public channels.
    let srv = start().await;
    let mut c = srv.client().await;
    c.send(json!({"event": "pusher:subscribe", "data": {"channel": "my-channel"}})).await;
    assert_eq!(c.recv().await, succeeded("my-channel"));
}

#[tokio::test]
async fn auth_and_channel_data_are_ignored_on_public_channels() {
    let srv = start().await;
    let mut c = srv.client().await;
    c.send(json!({"event": "pusher:subscribe", "data": {"channel": "my-channel", "auth": "garbage", "channel_data": "not json"}}))
        .await;
    assert_eq!(c.recv().await, succeeded("my-channel"));
}

#[tokio::test]
async fn subscribe_data_as_json_string_is_accepted() {
    let srv = start().await;
    let mut c = srv.client().await;
    c.send(json!({"event": "pusher:subscribe", "data": "{\"channel\":\"my-channel\",\"auth\":\"\"}"})).await;
    assert_eq!(c.recv().await, succeeded("my-channel"));
}

#[tokio::test]
async fn subscribed_client_receives_api_events() {
    let srv = start().await;
    let mut c = srv.client().await;
    c.subscribe("my-channel").await;
    let resp = srv.api().trigger(json!({"name": "my-event", "channel": "my-channel", "data": "{\"a\":1}"})).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(c.recv().await, json!({"event": "my-event", "channel": "my-channel", "data": "{\"a\":1}"}));
}

#[tokio::test]
async fn private_subscription_with_valid_signature_succeeds() {
    let srv = start().await;
    let mut c = srv.client().await;
    assert_eq!(c.subscribe_private("private-orders.42").await, succeeded("private-orders.42"));
}

#[tokio::test]
async fn private_subscription_signed_with_channel_data_is_accepted() {
    // Node/PHP SDKs sign channel_data for any channel when the app passes one (6.2).
    let srv = start().await;
    let mut c = srv.client().await;
    let cd = r#"{"foo":"bar"}"#;
    let auth = channel_auth(&c.socket_id, "private-x", Some(cd));
    c.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": "private-x", "channel_data": cd}}))
        .await;
    assert_eq!(c.recv().await, succeeded("private-x"));
}

#[tokio::test]
async fn private_subscription_with_bad_signature_is_refused_and_connection_stays_open() {
    let srv = start().await;
    let mut c = srv.client().await;
    let bad = "0".repeat(64);
    c.send(json!({"event": "pusher:subscribe", "data": {"auth": format!("{KEY}:{bad}"), "channel": "private-x"}}))
        .await;
    let expected =
        format!("Invalid signature: Expected HMAC SHA256 hex digest of {}:private-x, but got {bad}", c.socket_id);
    assert_eq!(c.recv().await, error(&expected));
    c.assert_alive().await;
    // and a correct subscription afterwards still works
    assert_eq!(c.subscribe_private("private-x").await, succeeded("private-x"));
}

#[tokio::test]
async fn signature_for_another_socket_is_refused() {
    let srv = start().await;
    let mut a = srv.client().await;
    let b = srv.client().await;
    let auth = channel_auth(&b.socket_id, "private-x", None);
    a.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": "private-x"}})).await;
    let msg = a.recv_error().await["message"].as_str().unwrap().to_owned();
    assert!(
        msg.starts_with(&format!(
            "Invalid signature: Expected HMAC SHA256 hex digest of {}:private-x, but got",
            a.socket_id
        )),
        "{msg}"
    );
}

#[tokio::test]
async fn private_subscription_without_auth_is_refused() {
    let srv = start().await;
    let mut c = srv.client().await;
    assert_eq!(c.subscribe("private-x").await, error("Auth info required to subscribe to private-x"));
    c.send(json!({"event": "pusher:subscribe", "data": {"channel": "private-x"}})).await;
    assert_eq!(c.recv().await, error("Auth info required to subscribe to private-x"));
    c.assert_alive().await;
}

#[tokio::test]
async fn private_subscription_with_wrong_key_is_refused() {
    let srv = start().await;
    let mut c = srv.client().await;
    let sig = hmac_hex(SECRET, &format!("{}:private-x", c.socket_id));
    let auth = format!("other-key:{sig}");
    c.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": "private-x"}})).await;
    assert_eq!(c.recv().await, error(&format!("Invalid key in subscription auth data: '{auth}'")));
    // no colon at all
    c.send(json!({"event": "pusher:subscribe", "data": {"auth": "garbage", "channel": "private-x"}})).await;
    assert_eq!(c.recv().await, error("Invalid key in subscription auth data: 'garbage'"));
    c.assert_alive().await;
}

#[tokio::test]
async fn encrypted_channel_subscription_succeeds_with_private_style_signature() {
    let srv = start().await;
    let mut c = srv.client().await;
    assert_eq!(c.subscribe_private("private-encrypted-vault").await, succeeded("private-encrypted-vault"));
    // encrypted payloads are relayed untouched
    let data = r#"{"nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","ciphertext":"Zm9v"}"#;
    let resp = srv.api().trigger(json!({"name": "secret", "channel": "private-encrypted-vault", "data": data})).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(c.recv().await, json!({"event": "secret", "channel": "private-encrypted-vault", "data": data}));
}

#[tokio::test]
async fn encrypted_channel_without_auth_is_refused() {
    let srv = start().await;
    let mut c = srv.client().await;
    assert_eq!(
        c.subscribe("private-encrypted-vault").await,
        error("Auth info required to subscribe to private-encrypted-vault")
    );
}

#[tokio::test]
async fn invalid_channel_names_are_refused() {
    let srv = start().await;
    let mut c = srv.client().await;
    let too_long = "a".repeat(201);
    for name in ["my channel", "bad!chars", "é", "#foo", "", too_long.as_str()] {
        assert_eq!(c.subscribe(name).await, error(&format!("Invalid channel name: {name}")), "{name:?}");
    }
    // 200 characters is still fine
    let max = "a".repeat(200);
    assert_eq!(c.subscribe(&max).await, succeeded(&max));
    c.assert_alive().await;
}

#[tokio::test]
async fn all_allowed_characters_are_accepted() {
    let srv = start().await;
    let mut c = srv.client().await;
    let name = "AZaz09_-=@,.;";
    assert_eq!(c.subscribe(name).await, succeeded(name));
}

#[tokio::test]
async fn subscribe_without_channel_is_an_error_not_a_crash() {
    let srv = start().await;
    let mut c = srv.client().await;
    c.send(json!({"event": "pusher:subscribe", "data": {"auth": ""}})).await;
    let err = c.recv_error().await;
    assert_eq!(err["code"], Value::Null);
    c.send(json!({"event": "pusher:subscribe", "data": {"channel": 5}})).await;
    assert_eq!(c.recv_error().await["code"], Value::Null);
    c.assert_alive().await;
}

#[tokio::test]
async fn resubscribing_sends_subscription_succeeded_again() {
    let srv = start().await;
    let mut c = srv.client().await;
    assert_eq!(c.subscribe("my-channel").await, succeeded("my-channel"));
    assert_eq!(c.subscribe("my-channel").await, succeeded("my-channel"));
    // still exactly one subscription: one event, one copy
    srv.api().trigger(json!({"name": "e", "channel": "my-channel", "data": "x"})).await;
    assert_eq!(c.recv().await, json!({"event": "e", "channel": "my-channel", "data": "x"}));
    c.expect_silence().await;
    let info = srv.api().get(&format!("/apps/{APP_ID}/channels/my-channel"), &[("info", "subscription_count")]).await;
    assert_eq!(info.json()["subscription_count"], 1, "{}", info.body);
}

#[tokio::test]
async fn unsubscribe_gets_no_reply_and_stops_delivery() {
    let srv = start().await;
    let mut leaver = srv.client().await;
    let mut stayer = srv.client().await;
    leaver.subscribe("my-channel").await;
    stayer.subscribe("my-channel").await;

    leaver.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "my-channel"}})).await;
    leaver.expect_silence().await;

    let resp = srv.api().trigger(json!({"name": "after", "channel": "my-channel", "data": "{}"})).await;
    assert_eq!(resp.status, 200);
    assert_eq!(stayer.recv().await["event"], "after");
    leaver.expect_silence().await;
    leaver.assert_alive().await;
}

#[tokio::test]
async fn subscription_over_the_per_connection_limit_is_refused_and_the_connection_kept() {
    let srv = start_with(config_with_limits(|l| l.max_subscriptions_per_connection = 3)).await;
    let mut c = srv.client().await;
    for ch in ["a", "b", "c"] {
        assert_eq!(c.subscribe(ch).await, succeeded(ch));
    }
    let limit = "Subscription limit reached: a connection may be subscribed to at most 3 channels; not subscribed to d";
    assert_eq!(c.subscribe("d").await, error(limit));
    // Subscribing again to a channel it already has is not a new subscription.
    assert_eq!(c.subscribe("a").await, succeeded("a"));
    // The refused channel receives nothing; the others still do.
    srv.api().trigger(json!({"name": "e", "channels": ["c", "d"], "data": "x"})).await;
    assert_eq!(c.recv().await, json!({"event": "e", "channel": "c", "data": "x"}));
    c.expect_silence().await;
    // Leaving one frees a place.
    c.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "b"}})).await;
    assert_eq!(c.subscribe("d").await, succeeded("d"));
    c.assert_alive().await;
    let info = srv.api().get(&format!("/apps/{APP_ID}/channels"), &[]).await;
    assert_eq!(info.json(), json!({"channels": {"a": {}, "c": {}, "d": {}}}), "{}", info.body);
}

#[tokio::test]
async fn subscription_that_would_exceed_the_apps_channel_cap_is_refused_across_connections() {
    let srv = start_with(config_with_limits(|l| l.max_channels = Some(2))).await;
    let mut a = srv.client().await;
    let mut b = srv.client().await;
    assert_eq!(a.subscribe("one").await, succeeded("one"));
    assert_eq!(b.subscribe("two").await, succeeded("two"));
    let limit = "Channel limit reached: the app may have at most 2 channels in use; not subscribed to three";
    assert_eq!(a.subscribe("three").await, error(limit), "the cap is the app's, not the connection's");
    // Joining a channel already in use occupies nothing new.
    assert_eq!(a.subscribe("two").await, succeeded("two"));
    a.assert_alive().await;
    // The refused channel was not kept; vacating one frees a place.
    b.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "two"}})).await;
    a.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "two"}})).await;
    sync(&mut a).await;
    sync(&mut b).await;
    assert_eq!(b.subscribe("three").await, succeeded("three"));
    let info = srv.api().get(&format!("/apps/{APP_ID}/channels"), &[]).await;
    assert_eq!(info.json(), json!({"channels": {"one": {}, "three": {}}}), "{}", info.body);
}

#[tokio::test]
async fn memory_is_trimmed_after_a_connection_with_many_subscriptions_leaves() {
    // The trim watches connections + subscriptions + channels, sampled every 10 s: one
    // connection holding 1,500 subscriptions is worth a trim when it goes (memory.rs).
    let srv = start_with(config_with_limits(|l| l.max_subscriptions_per_connection = 2_000)).await;
    let mut c = srv.client().await;
    for i in 0..1_500 {
        c.send(json!({"event": "pusher:subscribe", "data": {"channel": format!("many-{i}")}})).await;
    }
    for _ in 0..1_500 {
        c.recv_event("pusher_internal:subscription_succeeded").await;
    }
    // Held across at least one sample, so the peak is seen.
    tokio::time::sleep(std::time::Duration::from_secs(15)).await;
    assert_eq!(metric(srv.addr, "herald_memory_trims_total").await, 0.0, "nothing freed yet");
    drop(c);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while metric(srv.addr, "herald_memory_trims_total").await < 1.0 {
        assert!(std::time::Instant::now() < deadline, "no trim within 30 s of 1,500 subscriptions going");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(metric(srv.addr, "herald_subscriptions").await, 0.0);
}

#[tokio::test]
async fn unsubscribe_from_unknown_channel_is_ignored() {
    let srv = start().await;
    let mut c = srv.client().await;
    c.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "never-subscribed"}})).await;
    c.expect_silence().await;
    c.assert_alive().await;
}

#[tokio::test]
async fn server_to_user_channel_is_refused_without_signin() {
    let srv = start().await;
    let mut c = srv.client().await;
    assert_eq!(c.subscribe("#server-to-user-x").await, error("Not allowed to subscribe to #server-to-user-x"));
    c.assert_alive().await;
}

#[tokio::test]
async fn signin_echoes_user_data_and_allows_own_server_to_user_channel_only() {
    let srv = start().await;
    let mut c = srv.client().await;
    let user_data = r#"{"id":"u-1","user_info":{"name":"Ada"}}"#;
    assert_eq!(c.signin(user_data).await, json!({"event": "pusher:signin_success", "data": {"user_data": user_data}}));
    assert_eq!(c.subscribe("#server-to-user-u-1").await, succeeded("#server-to-user-u-1"));
    assert_eq!(c.subscribe("#server-to-user-u-2").await, error("Not allowed to subscribe to #server-to-user-u-2"));

    // sendToUser goes through /events on the user's channel
    let resp = srv.api().trigger(json!({"name": "hello", "channel": "#server-to-user-u-1", "data": "hi"})).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(c.recv().await, json!({"event": "hello", "channel": "#server-to-user-u-1", "data": "hi"}));
}

#[tokio::test]
async fn signin_user_data_string_is_echoed_byte_for_byte() {
    // Python-style spacing must survive: the signature covers the exact string.
    let srv = start().await;
    let mut c = srv.client().await;
    let user_data = r#"{"id": "u-1", "user_info": {"name": "Ada"}}"#;
    let got = c.signin(user_data).await;
    assert_eq!(got["event"], "pusher:signin_success", "{got}");
    assert_eq!(got["data"]["user_data"], user_data);
}

#[tokio::test]
async fn signin_with_bad_signature_is_refused_and_connection_stays_open() {
    let srv = start().await;
    let mut c = srv.client().await;
    let user_data = r#"{"id":"u-1"}"#;
    let auth = format!("{KEY}:{}", "f".repeat(64));
    c.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})).await;
    let err = c.recv_error().await;
    assert_eq!(err["code"], Value::Null, "{err}");
    assert!(err["message"].is_string());
    c.assert_alive().await;
    // not signed in: the user's channel is still refused
    assert_eq!(c.subscribe("#server-to-user-u-1").await, error("Not allowed to subscribe to #server-to-user-u-1"));
}

#[tokio::test]
async fn signin_with_different_id_on_same_connection_is_refused() {
    let srv = start().await;
    let mut c = srv.client().await;
    assert_eq!(c.signin(r#"{"id":"u-1"}"#).await["event"], "pusher:signin_success");
    assert_eq!(c.signin(r#"{"id":"u-1","user_info":{"v":2}}"#).await["event"], "pusher:signin_success");
    let other = c.signin(r#"{"id":"u-2"}"#).await;
    assert_eq!(other["event"], "pusher:error", "{other}");
    assert_eq!(other["data"]["code"], Value::Null);
    assert_eq!(c.subscribe("#server-to-user-u-1").await, succeeded("#server-to-user-u-1"));
}

#[tokio::test]
async fn signin_without_id_is_refused() {
    let srv = start().await;
    let mut c = srv.client().await;
    for ud in [r#"{"user_info":{}}"#, r#"{"id":5}"#, r#"{"id":""}"#, r#"{"id":"a b"}"#, r#"{"id":"a#b"}"#, "not json"] {
        let got = c.signin(ud).await;
        assert_eq!(got["event"], "pusher:error", "{ud}: {got}");
        assert_eq!(got["data"]["code"], Value::Null);
    }
    c.assert_alive().await;
}

#[tokio::test]
async fn emit_subscription_error_adds_channel_scoped_frame() {
    let srv = start_with(config_with_limits(|l| l.emit_subscription_error = true)).await;
    let mut c = srv.client().await;
    c.send(json!({"event": "pusher:subscribe", "data": {"auth": format!("{KEY}:{}", "0".repeat(64)), "channel": "private-foobar"}}))
        .await;
    let err = c.recv().await;
    assert_eq!(err["event"], "pusher:error");
    assert_eq!(err["data"]["code"], Value::Null);
    let sub_err = c.recv().await;
    assert_eq!(sub_err["event"], "pusher:subscription_error", "{sub_err}");
    assert_eq!(sub_err["channel"], "private-foobar");
    assert_eq!(sub_err["data"]["type"], "AuthError");
    assert_eq!(sub_err["data"]["status"], 401);
    assert!(sub_err["data"]["error"].as_str().unwrap().starts_with("Invalid signature"), "{sub_err}");
    c.assert_alive().await;
}

#[tokio::test]
async fn without_emit_subscription_error_only_pusher_error_is_sent() {
    let srv = start().await;
    let mut c = srv.client().await;
    assert_eq!(c.subscribe("private-foobar").await, error("Auth info required to subscribe to private-foobar"));
    c.expect_silence().await;
}

#[tokio::test]
async fn channels_of_different_apps_are_isolated() {
    let mut config = test_config();
    config.apps.push(app("other-app", "other-key", "other-secret"));
    let srv = start_with(config).await;
    let mut mine = srv.client().await;
    let mut theirs = Client::connect_established(&srv.ws_url("other-key")).await;
    mine.subscribe("my-channel").await;
    assert_eq!(theirs.subscribe("my-channel").await, succeeded("my-channel"));
    srv.api().trigger(json!({"name": "e", "channel": "my-channel", "data": "x"})).await;
    assert_eq!(mine.recv().await["event"], "e");
    theirs.expect_silence().await;
}
