//! Isolation between the apps of one server on the HTTP API: publishes, channel queries and
//! terminate_connections of one app never see or touch another app's connections.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use serde_json::json;
use support::*;

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
