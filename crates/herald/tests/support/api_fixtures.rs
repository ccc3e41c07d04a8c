//! Fixtures for the http_* tests: the standard app's endpoint paths, clients already subscribed,
//! in a presence channel or signed in, and the frame a subscriber receives for a published event.

use serde_json::{json, Value};

use super::{now, raw_http, user_auth, Client, Resp, TestServer, APP_ID};

pub(crate) fn events_path() -> String {
    format!("/apps/{APP_ID}/events")
}

pub(crate) fn batch_path() -> String {
    format!("/apps/{APP_ID}/batch_events")
}

pub(crate) fn channels_path() -> String {
    format!("/apps/{APP_ID}/channels")
}

/// A client subscribed to every channel in `channels` (public names only).
pub(crate) async fn subscriber(srv: &TestServer, channels: &[&str]) -> Client {
    let mut c = srv.client().await;
    for ch in channels {
        let r = c.subscribe(ch).await;
        assert_eq!(r["event"], "pusher_internal:subscription_succeeded", "{r}");
    }
    c
}

/// A client in presence channel `channel` as `user_id` (raw JSON for the id, e.g. `"\"1\""`).
pub(crate) async fn presence_member(srv: &TestServer, channel: &str, user_id_json: &str) -> Client {
    let mut c = srv.client().await;
    let cd = format!(r#"{{"user_id":{user_id_json},"user_info":{{"n":1}}}}"#);
    let r = c.subscribe_presence(channel, &cd).await;
    assert_eq!(r["event"], "pusher_internal:subscription_succeeded", "{r}");
    c
}

/// A client signed in as `user_id`.
pub(crate) async fn signed_in(srv: &TestServer, user_id: &str) -> Client {
    let mut c = srv.client().await;
    let user_data = json!({"id": user_id}).to_string();
    let auth = user_auth(&c.socket_id, &user_data);
    c.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})).await;
    let ok = c.recv_event("pusher:signin_success").await;
    assert_eq!(ok["data"]["user_data"], user_data.as_str());
    c
}

/// Round-trips a ping so every earlier frame of this client has been processed by the server.
pub(crate) async fn sync(c: &mut Client) {
    c.send(json!({"event": "pusher:ping", "data": {}})).await;
    c.recv_event("pusher:pong").await;
}

pub(crate) async fn post_raw(srv: &TestServer, path: &str, body: &[u8]) -> Resp {
    let q = srv.api().signed_query("POST", path, &[], body, now());
    raw_http(srv.addr, "POST", &format!("{path}?{q}"), body).await
}

pub(crate) fn ev(name: &str, ch: &str, data: &str) -> Value {
    json!({"event": name, "channel": ch, "data": data})
}
