//! TLS termination on the main port (`[tls]`), through real sockets: `wss://` and the signed
//! HTTP API over `https://` on the same port, `force_tls` apps admitting TLS connections, plain
//! HTTP sent to the TLS port, and a client that never starts its handshake (closed by the
//! header-read timeout while it holds a pending-connection permit), and the console behind the
//! same TLS. The metrics listener stays plain HTTP, so the metrics here are read from it.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::time::{Duration, Instant};

use herald::config::console::ConsoleConfig;
use herald::config::Config;
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The standard test config serving `files` over TLS, with a plain metrics listener.
fn tls_config(files: &TlsFiles) -> Config {
    Config { tls: Some(files.config()), metrics_port: Some(0), ..test_config() }
}

fn metrics_addr(srv: &TestServer) -> std::net::SocketAddr {
    srv.server.metrics_addr().expect("metrics listener")
}

/// Reads until the peer closes (EOF or reset); returns what arrived and how long it took.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((start + within).into(), s.read(&mut buf)).await {
            Err(_) => panic!("the server did not close the connection within {within:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, start.elapsed()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn wss_client_gets_connection_established_and_pong() {
    let ca = TestCa::new();
    let files = TlsFiles::new(&ca.leaf(1));
    let srv = start_with(tls_config(&files)).await;
    let mut client = wss_client(srv.addr, &ca).await;
    assert!(client.socket_id.contains('.'), "socket id {}", client.socket_id);
    client.assert_alive().await;
    assert!(srv.server.is_tls());
}

#[tokio::test]
async fn tls_connection_counts_as_secure_for_a_force_tls_app() {
    let ca = TestCa::new();
    let files = TlsFiles::new(&ca.leaf(1));
    let mut config = tls_config(&files);
    config.apps[0].limits.force_tls = true;
    let srv = start_with(config).await;
    // Refused with 4000 over plain ws:// (ws_connection.rs); admitted over TLS.
    let mut client = wss_client(srv.addr, &ca).await;
    client.assert_alive().await;
}

#[tokio::test]
async fn https_publish_reaches_a_wss_subscriber() {
    let ca = TestCa::new();
    let files = TlsFiles::new(&ca.leaf(1));
    let srv = start_with(tls_config(&files)).await;
    let mut sub = wss_client(srv.addr, &ca).await;
    assert_eq!(sub.subscribe("news").await["event"], "pusher_internal:subscription_succeeded");

    let resp =
        https_trigger(&srv.api(), &ca, json!({"name": "headline", "channel": "news", "data": "{\"n\":1}"})).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let event = sub.recv_event("headline").await;
    assert_eq!(event, json!({"event": "headline", "channel": "news", "data": "{\"n\":1}"}));

    let channels = https(
        srv.addr,
        &ca,
        "GET",
        &format!(
            "/apps/{APP_ID}/channels?{}",
            srv.api().signed_query("GET", &format!("/apps/{APP_ID}/channels"), &[], b"", now())
        ),
        b"",
    )
    .await;
    assert_eq!(channels.status, 200, "{}", channels.body);
    assert_eq!(channels.json(), json!({"channels": {"news": {}}}));
}

#[tokio::test]
async fn plain_http_to_the_tls_port_is_closed_and_the_server_keeps_serving() {
    let ca = TestCa::new();
    let files = TlsFiles::new(&ca.leaf(1));
    let srv = start_with(tls_config(&files)).await;

    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (got, _) = read_until_closed(&mut s, WAIT).await;
    assert!(!got.starts_with(b"HTTP/"), "a plain request got an HTTP answer: {:?}", String::from_utf8_lossy(&got));

    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"GET /app/app-key HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n").await.unwrap();
    read_until_closed(&mut s, WAIT).await;

    let failures = metric(metrics_addr(&srv), "herald_tls_handshake_failures_total").await;
    assert_eq!(failures, 2.0);
    // The server is unharmed: TLS clients still connect, and the metrics port is plain HTTP.
    wss_client(srv.addr, &ca).await.assert_alive().await;
    assert_eq!(raw_http(metrics_addr(&srv), "GET", "/up", b"").await.status, 200);
}

#[tokio::test]
async fn a_client_that_never_sends_a_client_hello_is_closed_by_the_header_read_timeout() {
    let ca = TestCa::new();
    let files = TlsFiles::new(&ca.leaf(1));
    let mut config = tls_config(&files);
    config.http_header_read_timeout = 1;
    config.http_keep_alive_timeout = 1;
    config.max_pending_connections = 1;
    let srv = start_with(config).await;

    let mut silent = TcpStream::connect(srv.addr).await.unwrap();
    // The silent client holds the only pending permit: the next connection is closed at once,
    // without the plain-text 503 a TLS client could not read.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut second = TcpStream::connect(srv.addr).await.unwrap();
    let (got, took) = read_until_closed(&mut second, Duration::from_millis(900)).await;
    assert!(got.is_empty(), "no plain answer on the TLS port: {:?}", String::from_utf8_lossy(&got));
    assert!(took < Duration::from_millis(800), "refused at once, took {took:?}");
    let refused = metric(metrics_addr(&srv), "herald_http_connections_refused_total{listener=\"main\"}").await;
    assert_eq!(refused, 1.0);

    let (_, took) = read_until_closed(&mut silent, Duration::from_secs(4)).await;
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    let m = metrics_addr(&srv);
    assert_eq!(metric(m, "herald_tls_handshake_failures_total").await, 1.0);
    assert_eq!(metric(m, "herald_http_header_timeouts_total").await, 1.0);
    // The permit is back: a TLS client gets in.
    wss_client(srv.addr, &ca).await.assert_alive().await;
}

/// One raw HTTP/1.1 request (head and body as given) over a new TLS connection.
async fn https_raw(addr: std::net::SocketAddr, ca: &TestCa, request: String) -> Resp {
    let mut s = tls_connect(addr, ca).await;
    s.write_all(request.as_bytes()).await.expect("write request");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await.expect("response in time");
    parse_response(&buf)
}

#[tokio::test]
async fn the_console_is_served_over_tls_with_a_secure_session_cookie() {
    let ca = TestCa::new();
    let files = TlsFiles::new(&ca.leaf(1));
    let console = ConsoleConfig { username: "admin".into(), password: "console-pass".into() };
    let srv = start_with(Config { console: Some(console), ..tls_config(&files) }).await;
    let addr = srv.addr;
    let form = "username=admin&password=console-pass&next=%2Fconsole";
    let head = format!(
        "POST /console/login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        form.len()
    );
    let login = https_raw(addr, &ca, format!("{head}{form}")).await;
    assert_eq!(login.status, 303, "{}", login.body);
    let set_cookie =
        login.headers.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).expect("a session cookie");
    assert!(set_cookie.contains("; Secure"), "not marked Secure under TLS: {set_cookie}");
    let cookie = set_cookie.split_once(':').unwrap().1.trim().split(';').next().unwrap();

    let get =
        format!("GET /console/api/apps HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n");
    let apps = https_raw(addr, &ca, get).await;
    assert_eq!(apps.status, 200, "{}", apps.body);
    assert_eq!(apps.json()[0]["id"], APP_ID);
    let anonymous =
        https_raw(addr, &ca, format!("GET /console HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")).await;
    assert_eq!(anonymous.status, 401);
}
