//! Operational endpoints over a real socket: liveness, readiness and Prometheus metrics.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use serde_json::json;
use support::*;

async fn get(srv: &TestServer, path: &str) -> Resp {
    raw_http(srv.addr, "GET", path, b"").await
}

/// The value of the first sample line `name{labels} value` / `name value` matching exactly.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

/// Polls /metrics until `series` has value `want` (gauges update asynchronously).
async fn wait_for_sample(srv: &TestServer, series: &str, want: f64) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = get(srv, "/metrics").await;
        assert_eq!(r.status, 200);
        if sample(&r.body, series) == Some(want) {
            return r.body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{series} never became {want}:\n{}", r.body);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn up_is_200() {
    let srv = start().await;
    let r = get(&srv, "/up").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(!r.body.trim().is_empty());
}

#[tokio::test]
async fn ready_is_200_while_serving() {
    let srv = start().await;
    let r = get(&srv, "/ready").await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn ops_endpoints_need_no_api_signature_and_ignore_path_prefix() {
    let mut cfg = test_config();
    cfg.path_prefix = "/pusher".into();
    let srv = start_with(cfg).await;
    for path in ["/up", "/ready", "/metrics"] {
        assert_eq!(get(&srv, path).await.status, 200, "{path}");
    }
}

#[tokio::test]
async fn metrics_exposes_prometheus_text_with_core_series() {
    let srv = start().await;
    let mut c = srv.client().await;
    c.subscribe("room").await;
    c.send(json!({"event": "pusher:ping", "data": {}})).await;
    c.recv_event("pusher:pong").await;
    let r = srv.api().trigger(json!({"name": "e", "channels": ["room"], "data": "x"})).await;
    assert_eq!(r.status, 200);
    let r = srv.api().get("/apps/app-id/channels", &[("info", "bogus")]).await;
    assert_eq!(r.status, 400);
    let r = srv.api().get("/apps/no-such-app/channels", &[]).await;
    assert_eq!(r.status, 404);
    let mut bad = srv.api();
    bad.secret = "wrong".into();
    assert_eq!(bad.get("/apps/app-id/channels", &[]).await.status, 401);

    let r = get(&srv, "/metrics").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.headers.to_ascii_lowercase().contains("text/plain"), "{}", r.headers);
    let text = &r.body;
    for name in ["herald_connections", "herald_ws_messages_in_total", "herald_http_requests_total"] {
        assert!(text.lines().any(|l| l.starts_with(name)), "{name} missing:\n{text}");
    }
    assert!(sample(text, "herald_ws_messages_in_total").unwrap_or(0.0) >= 2.0, "subscribe + ping counted:\n{text}");
    assert_eq!(sample(text, r#"herald_http_requests_total{status="200"}"#), Some(1.0), "{text}");
    assert_eq!(sample(text, r#"herald_http_requests_total{status="400"}"#), Some(1.0), "{text}");
    assert_eq!(sample(text, r#"herald_http_requests_total{status="404"}"#), Some(1.0), "{text}");
    assert_eq!(sample(text, r#"herald_http_requests_total{status="401"}"#), Some(1.0), "{text}");
}

#[tokio::test]
async fn connections_gauge_follows_open_websockets() {
    let srv = start().await;
    wait_for_sample(&srv, "herald_connections", 0.0).await;
    let a = srv.client().await;
    let b = srv.client().await;
    wait_for_sample(&srv, "herald_connections", 2.0).await;
    drop(a);
    wait_for_sample(&srv, "herald_connections", 1.0).await;
    drop(b);
    wait_for_sample(&srv, "herald_connections", 0.0).await;
}

#[tokio::test]
async fn app_connections_gauge_counts_each_apps_open_websockets() {
    let mut cfg = test_config();
    cfg.apps.push(app("other-id", "other-key", "other-secret"));
    let srv = start_with(cfg).await;
    let a = srv.client().await;
    let b = srv.client().await;
    let c = Client::connect_established(&srv.ws_url("other-key")).await;
    let mine = format!("herald_app_connections{{app_id=\"{APP_ID}\"}}");
    let other = "herald_app_connections{app_id=\"other-id\"}";
    wait_for_sample(&srv, &mine, 2.0).await;
    wait_for_sample(&srv, other, 1.0).await;
    drop(a);
    wait_for_sample(&srv, &mine, 1.0).await;
    drop((b, c));
    wait_for_sample(&srv, &mine, 0.0).await;
    wait_for_sample(&srv, other, 0.0).await;
}

#[tokio::test]
async fn metrics_of_two_servers_in_one_process_are_separate() {
    let one = start().await;
    let two = start().await;
    let _c = one.client().await;
    wait_for_sample(&one, "herald_connections", 1.0).await;
    wait_for_sample(&two, "herald_connections", 0.0).await;
}

#[tokio::test]
async fn metrics_port_takes_prometheus_off_the_main_port_and_listens_on_loopback() {
    let mut config = test_config();
    config.metrics_port = Some(0);
    let srv = start_with(config).await;
    let metrics_addr = srv.server.metrics_addr().unwrap();
    assert!(metrics_addr.ip().is_loopback(), "metrics_host defaults to 127.0.0.1: {metrics_addr}");
    assert_eq!(get(&srv, "/metrics").await.status, 404, "not on the public port");
    assert_eq!(get(&srv, "/up").await.status, 200, "/up stays for load balancers");
    assert_eq!(get(&srv, "/ready").await.status, 200);
    for path in ["/metrics", "/up", "/ready"] {
        assert_eq!(raw_http(metrics_addr, "GET", path, b"").await.status, 200, "{path} on the metrics port");
    }
    assert_eq!(raw_http(metrics_addr, "GET", "/apps/app-id/channels", b"").await.status, 404, "nothing else there");
}

/// Polls /metrics until `series` satisfies `ok` (the task count moves as tasks start and end).
async fn wait_until(srv: &TestServer, series: &str, what: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = get(srv, "/metrics").await;
        assert_eq!(r.status, 200);
        if let Some(v) = sample(&r.body, series).filter(|v| ok(*v)) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{series} never became {what}:\n{}", r.body);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn alive_tasks_gauge_counts_connection_tasks() {
    let srv = start().await;
    let idle = wait_until(&srv, "herald_tokio_alive_tasks", "positive", |v| v > 0.0).await;
    let clients = [srv.client().await, srv.client().await, srv.client().await];
    wait_for_sample(&srv, "herald_connections", 3.0).await;
    // Each open WebSocket is served by at least one task of its own.
    wait_until(&srv, "herald_tokio_alive_tasks", "idle + 3", |v| v >= idle + 3.0).await;
    drop(clients);
    wait_for_sample(&srv, "herald_connections", 0.0).await;
    wait_until(&srv, "herald_tokio_alive_tasks", "back to idle", |v| v <= idle).await;
}
