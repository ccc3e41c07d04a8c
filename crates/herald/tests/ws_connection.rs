//! Connection lifecycle over a real socket: handshake, admission codes (PROTOCOL.md 2.2),
//! liveness (2.7), and bad input that must not take the server down.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

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

fn url_with_query(srv: &TestServer, query: &str) -> String {
    format!("ws://{}/app/{KEY}{query}", srv.addr)
}

async fn expect_refused(url: &str, code: u16) {
    let mut ws = Client::connect(url).await;
    let err = next_json(&mut ws).await.expect("pusher:error before the close");
    assert_eq!(err["event"], "pusher:error", "{err}");
    assert_eq!(err["data"]["code"], code, "{err}");
    assert!(err["data"]["message"].is_string(), "{err}");
    assert_eq!(closed(&mut ws).await.code, code);
}

#[tokio::test]
async fn protocol_versions_5_6_7_are_accepted() {
    let srv = start().await;
    for p in ["5", "6", "7"] {
        let mut c = Client::connect_established(&url_with_query(&srv, &format!("?protocol={p}&client=js"))).await;
        c.assert_alive().await;
    }
}

#[tokio::test]
async fn protocol_8_is_refused_with_4007() {
    let srv = start().await;
    expect_refused(&url_with_query(&srv, "?protocol=8&client=js&version=8.4.0"), 4007).await;
}

#[tokio::test]
async fn non_numeric_protocol_is_refused_with_4007() {
    let srv = start().await;
    expect_refused(&url_with_query(&srv, "?protocol=abc"), 4007).await;
}

#[tokio::test]
async fn missing_protocol_is_accepted_by_default() {
    let srv = start().await;
    let mut c = Client::connect_established(&url_with_query(&srv, "?client=js&version=8.4.0")).await;
    c.assert_alive().await;
}

#[tokio::test]
async fn missing_protocol_is_refused_with_4008_when_strict() {
    let mut config = test_config();
    config.strict_protocol_param = true;
    let srv = start_with(config).await;
    expect_refused(&url_with_query(&srv, "?client=js&version=8.4.0"), 4008).await;
    // a client that does send the protocol is still fine
    srv.client().await.assert_alive().await;
}

#[tokio::test]
async fn disabled_app_is_refused_with_4003() {
    let srv = start_with(config_with_limits(|l| l.enabled = false)).await;
    expect_refused(&srv.ws_url(KEY), 4003).await;
}

#[tokio::test]
async fn app_over_connection_quota_is_refused_with_4004() {
    let srv = start_with(config_with_limits(|l| l.max_connections = Some(1))).await;
    let mut first = srv.client().await;
    expect_refused(&srv.ws_url(KEY), 4004).await;
    first.assert_alive().await;
}

#[tokio::test]
async fn app_quota_frees_up_when_a_connection_leaves() {
    let srv = start_with(config_with_limits(|l| l.max_connections = Some(1))).await;
    let first = srv.client().await;
    drop(first);
    assert!(eventually(WAIT, || srv.server.hub().connection_count() == 0).await);
    srv.client().await.assert_alive().await;
}

#[tokio::test]
async fn node_over_capacity_is_refused_with_4100() {
    let mut config = test_config();
    config.max_connections = Some(1);
    let srv = start_with(config).await;
    let mut first = srv.client().await;
    expect_refused(&srv.ws_url(KEY), 4100).await;
    first.assert_alive().await;
    assert_eq!(srv.server.hub().connection_count(), 1);
}

#[tokio::test]
async fn tls_only_app_refuses_plain_ws_with_4000() {
    let srv = start_with(config_with_limits(|l| l.force_tls = true)).await;
    expect_refused(&srv.ws_url(KEY), 4000).await;
}

#[tokio::test]
async fn tls_only_app_accepts_connection_forwarded_as_https_by_a_trusted_proxy() {
    let mut config = config_with_limits(|l| l.force_tls = true);
    config.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    let srv = start_with(config).await;
    let mut ws = connect_with_headers(&srv.ws_url(KEY), &[("x-forwarded-proto", "https")]).await;
    let first = next_json(&mut ws).await.unwrap();
    assert_eq!(first["event"], "pusher:connection_established", "{first}");
}

#[tokio::test]
async fn forwarded_proto_from_an_untrusted_peer_is_ignored() {
    // No trusted proxies (the default): a client cannot pass plain ws:// off as TLS.
    let srv = start_with(config_with_limits(|l| l.force_tls = true)).await;
    let mut ws = connect_with_headers(&srv.ws_url(KEY), &[("x-forwarded-proto", "https")]).await;
    assert_eq!(closed(&mut ws).await.code, 4000);
    // A trusted list that does not contain the peer: the same.
    let mut config = config_with_limits(|l| l.force_tls = true);
    config.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    let srv = start_with(config).await;
    let mut ws = connect_with_headers(&srv.ws_url(KEY), &[("x-forwarded-proto", "https")]).await;
    assert_eq!(closed(&mut ws).await.code, 4000);
}

#[tokio::test]
async fn ws_upgrade_on_unknown_paths_gets_http_404_and_server_keeps_running() {
    let srv = start().await;
    for path in ["/app/", "/foo", "/app", "/apps/app-key"] {
        let url = format!("ws://{}{path}?protocol=7", srv.addr);
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 404, "{path}"),
            other => panic!("{path}: expected HTTP 404, got {:?}", other.map(|(_, r)| r.status())),
        }
    }
    assert_eq!(raw_http(srv.addr, "GET", "/foo", b"").await.status, 404);
    srv.client().await.assert_alive().await;
}

/// A server with 1 s activity and pong timeouts, and one raw connection to it; returns the
/// server (keep it alive), the connection and its `pusher:connection_established`.
async fn fast_liveness_connection() -> (TestServer, RawWs, serde_json::Value) {
    let mut config = test_config();
    config.activity_timeout = 1;
    config.pong_timeout = 1;
    let srv = start_with(config).await;
    let mut raw = RawWs::connect(srv.addr, &format!("/app/{KEY}?protocol=7")).await;
    let est = raw.read_frame().await.unwrap().json();
    assert_eq!(est["event"], "pusher:connection_established");
    (srv, raw, est)
}

#[tokio::test]
async fn silent_client_is_probed_with_ping_then_closed_4201() {
    let (_srv, mut raw, est) = fast_liveness_connection().await;
    assert_eq!(data_of(&est)["activity_timeout"], 1);

    // Never answer anything: expect a WS Ping and a pusher:ping (any order), then 4201.
    let mut got_ws_ping = false;
    let mut got_pusher_ping = false;
    let mut error_code = None;
    let close = loop {
        let f = raw.read_frame().await.expect("a close frame before EOF");
        match f.opcode {
            RawFrame::PING => got_ws_ping = true,
            RawFrame::TEXT => {
                let v = f.json();
                if v["event"] == "pusher:ping" {
                    assert_eq!(v, json!({"event": "pusher:ping", "data": "{}"}));
                    got_pusher_ping = true;
                } else {
                    assert_eq!(v["event"], "pusher:error", "{v}");
                    error_code = v["data"]["code"].as_u64();
                }
            }
            RawFrame::CLOSE => break f,
            other => panic!("unexpected opcode {other}"),
        }
    };
    assert!(got_ws_ping, "a WebSocket Ping frame was expected before the close");
    assert!(got_pusher_ping, "a pusher:ping was expected before the close");
    assert_eq!(error_code, Some(4201));
    assert_eq!(close.close_code(), Some(4201));
}

#[tokio::test]
async fn client_answering_pusher_ping_with_pusher_pong_stays_connected() {
    let (_srv, mut raw, _) = fast_liveness_connection().await;

    // Answer only the protocol-level ping (never the WS Ping frame), for more than 3 s.
    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(3500);
    let mut pings = 0;
    while tokio::time::Instant::now() < until {
        let f = raw.read_frame().await.expect("connection must stay open");
        match f.opcode {
            RawFrame::PING => {}
            RawFrame::TEXT => {
                let v = f.json();
                assert_eq!(v, json!({"event": "pusher:ping", "data": "{}"}));
                pings += 1;
                raw.send_text(r#"{"event":"pusher:pong","data":{}}"#).await;
            }
            _ => panic!("unexpected frame {f:?}"),
        }
    }
    assert!(pings >= 2, "expected repeated probes, got {pings}");
    raw.send_text(r#"{"event":"pusher:ping","data":{}}"#).await;
    loop {
        let f = raw.read_frame().await.expect("still open");
        if f.opcode == RawFrame::TEXT && f.json()["event"] == "pusher:pong" {
            break;
        }
        assert_ne!(f.opcode, RawFrame::CLOSE, "closed: {f:?}");
    }
}

/// The connection keeps one timer and re-arms it lazily: client activity moves the liveness
/// deadline later without touching the timer, which then fires early and is moved on. A client
/// that keeps talking must therefore never be probed, however often that happens.
#[tokio::test]
async fn active_client_is_never_probed() {
    let (_srv, mut raw, _) = fast_liveness_connection().await;
    // Talk every 300 ms for 3.5 s (3.5 activity timeouts); every reply must be our pong.
    for _ in 0..12 {
        raw.send_text(r#"{"event":"pusher:ping","data":{}}"#).await;
        let f = raw.read_frame().await.expect("connection must stay open");
        assert_eq!(f.opcode, RawFrame::TEXT, "unexpected frame {f:?}");
        assert_eq!(f.json()["event"], "pusher:pong", "an active client was probed: {:?}", f.json());
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

fn authorized_config() -> herald::config::Config {
    let mut config = config_with_limits(|l| l.require_authorized_connections = true);
    config.authorized_connection_timeout = 1;
    config
}

#[tokio::test]
async fn unauthorized_connection_is_closed_4009_after_timeout() {
    let srv = start_with(authorized_config()).await;
    let mut c = srv.client().await;
    // a public subscription does not authorize the connection
    assert_eq!(c.subscribe("my-channel").await["event"], "pusher_internal:subscription_succeeded");
    let err = c.recv_event("pusher:error").await;
    assert_eq!(err["data"]["code"], 4009);
    assert_eq!(c.closed().await.code, 4009);
}

#[tokio::test]
async fn private_subscription_authorizes_the_connection() {
    let srv = start_with(authorized_config()).await;
    let mut authorized = srv.client().await;
    assert_eq!(authorized.subscribe_private("private-x").await["event"], "pusher_internal:subscription_succeeded");
    // Opened later, so its deadline passes after the authorized one's.
    let mut unauthorized = srv.client().await;
    assert_eq!(unauthorized.closed().await.code, 4009);
    authorized.assert_alive().await;
}

#[tokio::test]
async fn signin_authorizes_the_connection() {
    let srv = start_with(authorized_config()).await;
    let mut authorized = srv.client().await;
    assert_eq!(authorized.signin(r#"{"id":"u-1"}"#).await["event"], "pusher:signin_success");
    let mut unauthorized = srv.client().await;
    assert_eq!(unauthorized.closed().await.code, 4009);
    authorized.assert_alive().await;
}
