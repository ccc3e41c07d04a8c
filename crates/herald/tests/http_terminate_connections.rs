//! `POST /apps/{id}/users/{user_id}/terminate_connections` (PROTOCOL.md 10.8): every connection
//! signed in as the user is closed with 4009 and no other; the pusher-http-python alias path
//! and a percent-encoded user id work too.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use serde_json::json;
use support::*;

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
