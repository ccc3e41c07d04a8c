//! HTTP API request authentication over a real socket (PROTOCOL.md 10.1, 10.2, 10.9): every
//! 401 rule, SDK-specific encodings, the published vectors byte for byte, and the path prefix.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use serde_json::{json, Value};
use support::*;

/// Docs / computed-vector app (PROTOCOL.md 10.2, 10.9).
const V_ID: &str = "3";
const V_KEY: &str = "278d425bdf160c739803";
const V_SECRET: &str = "7ad3773142a6692b25b8";

/// A query string from explicit (decoded) params, signed over exactly those params, sorted.
/// Nothing is added implicitly (no auth_* defaults, no body_md5) so tests control every byte.
fn sign_exact(secret: &str, method: &str, path: &str, params: &[(&str, &str)]) -> (String, String) {
    let mut p: Vec<(&str, &str)> = params.to_vec();
    p.sort();
    let canonical = p.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let sig = hmac_hex(secret, &format!("{method}\n{path}\n{canonical}"));
    (canonical, sig)
}

fn trigger_body() -> Vec<u8> {
    json!({"name": "ev", "channel": "c", "data": "d"}).to_string().into_bytes()
}

async fn post_with_query(srv: &TestServer, query: &str, body: &[u8]) -> Resp {
    raw_http(srv.addr, "POST", &format!("{}?{query}", events_path()), body).await
}

fn vector_config() -> herald::config::Config {
    let mut c = test_config();
    c.apps.push(app(V_ID, V_KEY, V_SECRET));
    // The vectors use fixed timestamps (2012, 2023); widen the window so only the bytes matter.
    c.api_timestamp_tolerance = 10_000_000_000;
    c
}

#[tokio::test]
async fn valid_signature_is_accepted_with_200_json() {
    let srv = start().await;
    let r = srv.api().trigger(json!({"name": "ev", "channels": ["c"], "data": "d"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({}));
    assert!(r.headers.to_ascii_lowercase().contains("application/json"), "{}", r.headers);
}

#[tokio::test]
async fn bad_signature_is_401_with_readable_body() {
    let srv = start().await;
    let body = trigger_body();
    let q = srv.api().signed_query("POST", &events_path(), &[], &body, now());
    let (head, _sig) = q.rsplit_once("auth_signature=").unwrap();
    let bad = format!("{head}auth_signature={}", "0".repeat(64));
    let r = post_with_query(&srv, &bad, &body).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.body.contains("Invalid signature"), "body: {}", r.body);
    assert!(r.headers.to_ascii_lowercase().contains("text/plain"), "{}", r.headers);
}

#[tokio::test]
async fn signature_of_other_secret_is_401() {
    let srv = start().await;
    let body = trigger_body();
    let mut api = srv.api();
    api.secret = "not-the-secret".into();
    let q = api.signed_query("POST", &events_path(), &[], &body, now());
    let r = post_with_query(&srv, &q, &body).await;
    assert_eq!(r.status, 401, "{r:?}");
}

#[tokio::test]
async fn timestamp_601_seconds_old_is_401_mentioning_timestamp() {
    let srv = start().await;
    let body = trigger_body();
    let q = srv.api().signed_query("POST", &events_path(), &[], &body, now() - 601);
    let r = post_with_query(&srv, &q, &body).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.body.to_lowercase().contains("timestamp"), "body: {}", r.body);
}

#[tokio::test]
async fn timestamp_601_seconds_ahead_is_401_mentioning_timestamp() {
    let srv = start().await;
    let body = trigger_body();
    let q = srv.api().signed_query("POST", &events_path(), &[], &body, now() + 601);
    let r = post_with_query(&srv, &q, &body).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.body.to_lowercase().contains("timestamp"), "body: {}", r.body);
}

#[tokio::test]
async fn timestamp_within_600_seconds_is_accepted() {
    let srv = start().await;
    let body = trigger_body();
    // A few seconds of margin for the test itself; both directions.
    for ts in [now() - 590, now() + 590] {
        let q = srv.api().signed_query("POST", &events_path(), &[], &body, ts);
        let r = post_with_query(&srv, &q, &body).await;
        assert_eq!(r.status, 200, "ts {ts}: {r:?}");
    }
}

#[tokio::test]
async fn non_numeric_timestamp_is_401() {
    let srv = start().await;
    let path = format!("/apps/{APP_ID}/channels");
    let (q, sig) = sign_exact(
        SECRET,
        "GET",
        &path,
        &[("auth_key", KEY), ("auth_timestamp", "yesterday"), ("auth_version", "1.0")],
    );
    let r = raw_http(srv.addr, "GET", &format!("{path}?{q}&auth_signature={sig}"), b"").await;
    assert_eq!(r.status, 401, "{r:?}");
}

#[tokio::test]
async fn wrong_body_md5_is_401() {
    let srv = start().await;
    let body = trigger_body();
    let ts = now().to_string();
    let wrong = md5_hex(b"something else");
    let (q, sig) = sign_exact(
        SECRET,
        "POST",
        &events_path(),
        &[("auth_key", KEY), ("auth_timestamp", &ts), ("auth_version", "1.0"), ("body_md5", &wrong)],
    );
    let r = post_with_query(&srv, &format!("{q}&auth_signature={sig}"), &body).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.body.contains("body_md5"), "body: {}", r.body);
}

#[tokio::test]
async fn missing_body_md5_with_a_body_is_401() {
    let srv = start().await;
    let body = trigger_body();
    let ts = now().to_string();
    let (q, sig) = sign_exact(
        SECRET,
        "POST",
        &events_path(),
        &[("auth_key", KEY), ("auth_timestamp", &ts), ("auth_version", "1.0")],
    );
    let r = post_with_query(&srv, &format!("{q}&auth_signature={sig}"), &body).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.body.contains("body_md5"), "body: {}", r.body);
}

#[tokio::test]
async fn empty_body_md5_on_get_is_accepted_python_style() {
    let srv = start().await;
    let path = format!("/apps/{APP_ID}/channels");
    let ts = now().to_string();
    let empty = md5_hex(b"");
    assert_eq!(empty, "d41d8cd98f00b204e9800998ecf8427e");
    let (q, sig) = sign_exact(
        SECRET,
        "GET",
        &path,
        &[("auth_key", KEY), ("auth_timestamp", &ts), ("auth_version", "1.0"), ("body_md5", &empty)],
    );
    let r = raw_http(srv.addr, "GET", &format!("{path}?{q}&auth_signature={sig}"), b"").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"channels": {}}));
}

#[tokio::test]
async fn non_empty_body_md5_on_get_is_401() {
    let srv = start().await;
    let path = format!("/apps/{APP_ID}/channels");
    let ts = now().to_string();
    let other = md5_hex(b"{}");
    let (q, sig) = sign_exact(
        SECRET,
        "GET",
        &path,
        &[("auth_key", KEY), ("auth_timestamp", &ts), ("auth_version", "1.0"), ("body_md5", &other)],
    );
    let r = raw_http(srv.addr, "GET", &format!("{path}?{q}&auth_signature={sig}"), b"").await;
    assert_eq!(r.status, 401, "{r:?}");
}

#[tokio::test]
async fn missing_auth_params_are_401() {
    let srv = start().await;
    let path = format!("/apps/{APP_ID}/channels");
    // No query at all.
    let r = raw_http(srv.addr, "GET", &path, b"").await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(!r.body.trim().is_empty());
    // Each required parameter left out in turn (signed over what remains).
    let ts = now().to_string();
    let all = [("auth_key", KEY), ("auth_timestamp", ts.as_str()), ("auth_version", "1.0")];
    for skip in 0..all.len() {
        let params: Vec<(&str, &str)> = all.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, p)| *p).collect();
        let (q, sig) = sign_exact(SECRET, "GET", &path, &params);
        let r = raw_http(srv.addr, "GET", &format!("{path}?{q}&auth_signature={sig}"), b"").await;
        assert_eq!(r.status, 401, "without {}: {r:?}", all[skip].0);
        assert!(r.body.contains(all[skip].0), "without {}: body {}", all[skip].0, r.body);
    }
    // No signature.
    let (q, _) = sign_exact(SECRET, "GET", &path, &all);
    let r = raw_http(srv.addr, "GET", &format!("{path}?{q}"), b"").await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.body.contains("auth_signature"), "body {}", r.body);
}

#[tokio::test]
async fn unknown_auth_key_is_401() {
    let srv = start().await;
    let mut api = srv.api();
    api.key = "no-such-key".into();
    let r = api.get(&format!("/apps/{APP_ID}/channels"), &[]).await;
    assert_eq!(r.status, 401, "{r:?}");
}

#[tokio::test]
async fn key_of_another_app_on_this_apps_path_is_401() {
    let mut c = test_config();
    c.apps.push(app("app-b", "key-b", "secret-b"));
    let srv = start_with(c).await;
    // App B's credentials, correctly signed, but against app A's path.
    let api_b = Api { addr: srv.addr, app_id: "app-b".into(), key: "key-b".into(), secret: "secret-b".into() };
    let r = api_b.get(&format!("/apps/{APP_ID}/channels"), &[]).await;
    assert_eq!(r.status, 401, "{r:?}");
    let r = api_b.post(&format!("/apps/{APP_ID}/events"), &json!({"name": "e", "channel": "c", "data": "d"})).await;
    assert_eq!(r.status, 401, "{r:?}");
    // The same credentials on their own path work.
    let r = api_b.get("/apps/app-b/channels", &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn auth_version_2_is_401() {
    let srv = start().await;
    let path = format!("/apps/{APP_ID}/channels");
    let ts = now().to_string();
    let (q, sig) =
        sign_exact(SECRET, "GET", &path, &[("auth_key", KEY), ("auth_timestamp", &ts), ("auth_version", "2.0")]);
    let r = raw_http(srv.addr, "GET", &format!("{path}?{q}&auth_signature={sig}"), b"").await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.body.contains("auth_version"), "body {}", r.body);
}

#[tokio::test]
async fn percent_encoded_query_values_verify_against_decoded_values() {
    let srv = start().await;
    let path = format!("/apps/{APP_ID}/channels/presence-room");
    let q = srv.api().signed_query("GET", &path, &[("info", "user_count,subscription_count")], b"", now());
    // Signed over `info=user_count,subscription_count`; sent PHP/Python style with %2C.
    let encoded = q.replace("user_count,subscription_count", "user_count%2Csubscription_count");
    assert_ne!(encoded, q);
    let r = raw_http(srv.addr, "GET", &format!("{path}?{encoded}"), b"").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"occupied": false, "user_count": 0, "subscription_count": 0}));
    // Form decoding also applies to `+` and to keys.
    let list = format!("/apps/{APP_ID}/channels");
    let q = srv.api().signed_query("GET", &list, &[("filter_by_prefix", "a b")], b"", now());
    let plus = q.replace("filter_by_prefix=a b", "filter%5Fby%5Fprefix=a+b");
    assert_ne!(plus, q);
    let r = raw_http(srv.addr, "GET", &format!("{list}?{plus}"), b"").await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn raw_commas_in_query_values_verify() {
    let srv = start().await;
    let path = format!("/apps/{APP_ID}/channels/presence-room");
    let q = srv.api().signed_query("GET", &path, &[("info", "user_count,subscription_count")], b"", now());
    assert!(q.contains("info=user_count,subscription_count"));
    let r = raw_http(srv.addr, "GET", &format!("{path}?{q}"), b"").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"occupied": false, "user_count": 0, "subscription_count": 0}));
}

#[tokio::test]
async fn repeated_query_keys_are_joined_with_commas_in_arrival_order() {
    let srv = start().await;
    let path = format!("/apps/{APP_ID}/channels/presence-room");
    // Signed as `info=user_count,subscription_count`, sent as two `info` items (PHP arrays).
    let q = srv.api().signed_query("GET", &path, &[("info", "user_count,subscription_count")], b"", now());
    let split = q.replace("info=user_count,subscription_count", "info=user_count&info=subscription_count");
    assert_ne!(split, q);
    let r = raw_http(srv.addr, "GET", &format!("{path}?{split}"), b"").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"occupied": false, "user_count": 0, "subscription_count": 0}));
}

#[tokio::test]
async fn query_keys_are_lower_cased_before_signing() {
    let srv = start().await;
    let path = format!("/apps/{APP_ID}/channels");
    let q = srv.api().signed_query("GET", &path, &[("filter_by_prefix", "x")], b"", now());
    let upper = q.replace("filter_by_prefix=", "Filter_By_Prefix=");
    assert_ne!(upper, q);
    let r = raw_http(srv.addr, "GET", &format!("{path}?{upper}"), b"").await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn signature_covers_method_and_path() {
    let srv = start().await;
    let path = format!("/apps/{APP_ID}/channels");
    // Signed for another path of the same app.
    let q = srv.api().signed_query("GET", &format!("{path}/other"), &[], b"", now());
    let r = raw_http(srv.addr, "GET", &format!("{path}?{q}"), b"").await;
    assert_eq!(r.status, 401, "{r:?}");
    // Signed for POST, sent as GET.
    let q = srv.api().signed_query("POST", &path, &[], b"", now());
    let r = raw_http(srv.addr, "GET", &format!("{path}?{q}"), b"").await;
    assert_eq!(r.status, 401, "{r:?}");
    // Lower-case method in the string to sign is not what the server expects.
    let q = srv.api().signed_query("get", &path, &[], b"", now());
    let r = raw_http(srv.addr, "GET", &format!("{path}?{q}"), b"").await;
    assert_eq!(r.status, 401, "{r:?}");
}

#[tokio::test]
async fn unsigned_extra_query_param_breaks_the_signature() {
    let srv = start().await;
    let path = format!("/apps/{APP_ID}/channels");
    let q = srv.api().signed_query("GET", &path, &[], b"", now());
    // Every query parameter is covered by the signature, including unknown ones.
    let r = raw_http(srv.addr, "GET", &format!("{path}?{q}&extra=1"), b"").await;
    assert_eq!(r.status, 401, "{r:?}");
    let q = srv.api().signed_query("GET", &path, &[("extra", "1")], b"", now());
    let r = raw_http(srv.addr, "GET", &format!("{path}?{q}"), b"").await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn unknown_app_id_in_path_is_404() {
    let srv = start().await;
    let r = srv.api().get("/apps/no-such-app/channels", &[]).await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = srv.api().post("/apps/no-such-app/events", &json!({"name": "e", "channel": "c", "data": "d"})).await;
    assert_eq!(r.status, 404, "{r:?}");
}

#[tokio::test]
async fn unknown_path_is_404() {
    let srv = start().await;
    let r = srv.api().get(&format!("/apps/{APP_ID}/nothing-here"), &[]).await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = srv.api().get("/definitely/not/a/route", &[]).await;
    assert_eq!(r.status, 404, "{r:?}");
    // Deprecated endpoint (10.10) is not served.
    let r = srv.api().get(&format!("/apps/{APP_ID}/channels/c/stats"), &[]).await;
    assert_eq!(r.status, 404, "{r:?}");
}

#[tokio::test]
async fn disabled_app_is_403() {
    let mut c = test_config();
    let mut off = app("off-app", "off-key", "off-secret");
    off.limits.enabled = false;
    c.apps.push(off);
    let srv = start_with(c).await;
    let api = Api { addr: srv.addr, app_id: "off-app".into(), key: "off-key".into(), secret: "off-secret".into() };
    let r = api.trigger(json!({"name": "e", "channel": "c", "data": "d"})).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert!(!r.body.trim().is_empty());
    let r = api.get("/apps/off-app/channels", &[]).await;
    assert_eq!(r.status, 403, "{r:?}");
}

#[tokio::test]
async fn docs_worked_example_is_accepted_byte_exact() {
    let srv = start_with(vector_config()).await;
    let mut c = Client::connect_established(&srv.ws_url(V_KEY)).await;
    assert_eq!(c.subscribe("project-3").await["event"], "pusher_internal:subscription_succeeded");
    let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
    assert_eq!(md5_hex(body), "ec365a775a4cd0599faeb73354201b6f");
    let url = "/apps/3/events?auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0\
               &body_md5=ec365a775a4cd0599faeb73354201b6f\
               &auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";
    let r = raw_http(srv.addr, "POST", url, body).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({}));
    let ev = c.recv_event("foo").await;
    assert_eq!(ev, json!({"event": "foo", "channel": "project-3", "data": "{\"some\":\"data\"}"}));
    // One changed byte in the signature fails.
    let bad = url.replace("da454824", "da454825");
    assert_eq!(raw_http(srv.addr, "POST", &bad, body).await.status, 401);
}

#[tokio::test]
async fn docs_worked_example_is_stale_under_the_default_tolerance() {
    let mut c = vector_config();
    c.api_timestamp_tolerance = 600;
    let srv = start_with(c).await;
    let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
    let url = "/apps/3/events?auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0\
               &body_md5=ec365a775a4cd0599faeb73354201b6f\
               &auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";
    let r = raw_http(srv.addr, "POST", url, body).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.body.contains("Timestamp expired"), "body {}", r.body);
    assert!(r.body.contains("2012-11-16T17:49:39Z"), "given time rendered in RFC 3339: {}", r.body);
}

#[tokio::test]
async fn vector_g_list_presence_channels_raw_query() {
    let srv = start_with(vector_config()).await;
    let mut c = Client::connect_established(&srv.ws_url(V_KEY)).await;
    let cd = r#"{"user_id":"u-1"}"#;
    let auth = format!("{V_KEY}:{}", hmac_hex(V_SECRET, &format!("{}:presence-room:{cd}", c.socket_id)));
    c.send(
        json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": "presence-room", "channel_data": cd}}),
    )
    .await;
    assert_eq!(c.recv().await["event"], "pusher_internal:subscription_succeeded");
    let url = "/apps/3/channels?auth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0\
               &filter_by_prefix=presence-&info=user_count\
               &auth_signature=5142c71a4248ef5f3ec45e8793d8997773f1d19ce69ee6f6b1d75131d8aa0a6a";
    let r = raw_http(srv.addr, "GET", url, b"").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"channels": {"presence-room": {"user_count": 1}}}));
}

#[tokio::test]
async fn vector_h_python_style_single_channel_with_percent_encoded_info() {
    let srv = start_with(vector_config()).await;
    let mut c = Client::connect_established(&srv.ws_url(V_KEY)).await;
    let cd = r#"{"user_id":"u-1"}"#;
    let auth = format!("{V_KEY}:{}", hmac_hex(V_SECRET, &format!("{}:presence-room:{cd}", c.socket_id)));
    c.send(
        json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": "presence-room", "channel_data": cd}}),
    )
    .await;
    assert_eq!(c.recv().await["event"], "pusher_internal:subscription_succeeded");
    let url = "/apps/3/channels/presence-room?auth_key=278d425bdf160c739803&auth_timestamp=1700000000\
               &auth_version=1.0&body_md5=d41d8cd98f00b204e9800998ecf8427e&info=user_count%2Csubscription_count\
               &auth_signature=c510e9ddac97883185422c26f67b3d837134cddcdc1af8f6e93a6b6b6d1ea28c";
    let r = raw_http(srv.addr, "GET", url, b"").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"occupied": true, "user_count": 1, "subscription_count": 1}));
    // The same request with a raw comma (Node/Go style) verifies too.
    let raw = url.replace("%2C", ",");
    let r = raw_http(srv.addr, "GET", &raw, b"").await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn vector_i_terminate_user_connections() {
    let srv = start_with(vector_config()).await;
    let mut c = Client::connect_established(&srv.ws_url(V_KEY)).await;
    let user_data = r#"{"id":"u-1"}"#;
    let auth = format!("{V_KEY}:{}", hmac_hex(V_SECRET, &format!("{}::user::{user_data}", c.socket_id)));
    c.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})).await;
    c.recv_event("pusher:signin_success").await;
    let url = "/apps/3/users/u-1/terminate_connections?auth_key=278d425bdf160c739803&auth_timestamp=1700000000\
               &auth_version=1.0&body_md5=99914b932bd37a50b983c5e7c90ae93b\
               &auth_signature=a7f8b5c21ca5d41dcf410b171a1e933f29c5a5a126a9dd1b89dcf225960767ac";
    let r = raw_http(srv.addr, "POST", url, b"{}").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({}));
    assert_eq!(c.closed().await.code, 4009);
}

#[tokio::test]
async fn vector_j_batch_events() {
    let srv = start_with(vector_config()).await;
    let mut c = Client::connect_established(&srv.ws_url(V_KEY)).await;
    c.subscribe("orders").await;
    let body = br#"{"batch":[{"channel":"orders","name":"created","data":"{\"id\":1}"},{"channel":"presence-room","name":"ping","data":"hi","info":"user_count"}]}"#;
    let url = "/apps/3/batch_events?auth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0\
               &body_md5=1baa3cd1988d12f026a986f931a35958\
               &auth_signature=52d47b3061f669e4da2ad82eed9e4c3ee05bbdccf57c5bfb8310edee7f1f57b3";
    let r = raw_http(srv.addr, "POST", url, body).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"batch": [{}, {"user_count": 0}]}));
    assert_eq!(c.recv_event("created").await, json!({"event": "created", "channel": "orders", "data": "{\"id\":1}"}));
}

#[tokio::test]
async fn vector_l_send_to_user() {
    let srv = start_with(vector_config()).await;
    let mut c = Client::connect_established(&srv.ws_url(V_KEY)).await;
    let user_data = r#"{"id":"u-1"}"#;
    let auth = format!("{V_KEY}:{}", hmac_hex(V_SECRET, &format!("{}::user::{user_data}", c.socket_id)));
    c.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})).await;
    c.recv_event("pusher:signin_success").await;
    // pusher-js subscribes to its own server-to-user channel after signin.
    c.send(json!({"event": "pusher:subscribe", "data": {"channel": "#server-to-user-u-1"}})).await;
    c.recv_event("pusher_internal:subscription_succeeded").await;
    let body = br##"{"name":"notice","data":"{\"text\":\"hi\"}","channels":["#server-to-user-u-1"]}"##;
    let url = "/apps/3/events?auth_key=278d425bdf160c739803&auth_timestamp=1700000000&auth_version=1.0\
               &body_md5=a63bf28d239115bc6df4baecdf31ce65\
               &auth_signature=a83eb0672faa89f07583912e8076b92bea7a9771bd460e1e64ca144da28d5379";
    let r = raw_http(srv.addr, "POST", url, body).await;
    assert_eq!(r.status, 200, "{r:?}");
    let ev = c.recv_event("notice").await;
    assert_eq!(ev, json!({"event": "notice", "channel": "#server-to-user-u-1", "data": "{\"text\":\"hi\"}"}));
}

#[tokio::test]
async fn path_prefix_is_stripped_before_verification_and_serves_websockets() {
    let mut cfg = test_config();
    cfg.path_prefix = "/pusher".into();
    let srv = start_with(cfg).await;
    let url = format!("ws://{}/pusher/app/{KEY}?protocol=7&client=js&version=8.4.0", srv.addr);
    let mut c = Client::connect_established(&url).await;
    c.subscribe("news").await;

    let body = json!({"name": "ev", "channels": ["news"], "data": "hello"}).to_string().into_bytes();
    // Signed over the unprefixed path (what PHP's `path` option does), sent with the prefix.
    let q = srv.api().signed_query("POST", &events_path(), &[], &body, now());
    let r = raw_http(srv.addr, "POST", &format!("/pusher{}?{q}", events_path()), &body).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({}));
    assert_eq!(c.recv_event("ev").await, json!({"event": "ev", "channel": "news", "data": "hello"}));

    let path = format!("/apps/{APP_ID}/channels");
    let q = srv.api().signed_query("GET", &path, &[], b"", now());
    let r = raw_http(srv.addr, "GET", &format!("/pusher{path}?{q}"), b"").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"channels": {"news": {}}}));

    // Without the prefix the API is not served.
    let r = raw_http(srv.addr, "GET", &format!("{path}?{q}"), b"").await;
    assert_eq!(r.status, 404, "{r:?}");
}

/// A prefix that is also the start of the API path (`/apps`) is removed once, not twice.
#[tokio::test]
async fn path_prefix_that_starts_the_api_path_is_stripped_once() {
    let mut cfg = test_config();
    cfg.path_prefix = "/apps".into();
    let srv = start_with(cfg).await;
    let path = format!("/apps/{APP_ID}/channels");
    let q = srv.api().signed_query("GET", &path, &[], b"", now());
    let r = raw_http(srv.addr, "GET", &format!("/apps{path}?{q}"), b"").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"channels": {}}));
}

#[tokio::test]
async fn percent_encoded_channel_in_path_verifies() {
    let srv = start().await;
    let mut c = srv.client().await;
    c.subscribe("a@b").await;
    // Signed over the decoded path, sent encoded: the server retries with the decoded path.
    let signed_path = format!("/apps/{APP_ID}/channels/a@b");
    let q = srv.api().signed_query("GET", &signed_path, &[("info", "subscription_count")], b"", now());
    let r = raw_http(srv.addr, "GET", &format!("/apps/{APP_ID}/channels/a%40b?{q}"), b"").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"occupied": true, "subscription_count": 1}));
}

#[tokio::test]
async fn authentication_happens_before_body_validation() {
    let srv = start().await;
    // Malformed JSON with a bad signature → 401, not 400.
    let body = b"{not json";
    let q = srv.api().signed_query("POST", &events_path(), &[], body, now());
    let (head, _) = q.rsplit_once("auth_signature=").unwrap();
    let r = post_with_query(&srv, &format!("{head}auth_signature={}", "a".repeat(64)), body).await;
    assert_eq!(r.status, 401, "{r:?}");
    let body: Value = json!({"name": "e", "channel": "c", "data": "x".repeat(20_000)});
    let body = body.to_string().into_bytes();
    let q = srv.api().signed_query("POST", &events_path(), &[], &body, now() - 10_000);
    let r = post_with_query(&srv, &q, &body).await;
    assert_eq!(r.status, 401, "oversized data but stale timestamp: {r:?}");
}
