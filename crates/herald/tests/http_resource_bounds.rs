//! What a client can hold before it is answered, through real sockets: a header trickled byte
//! by byte is closed by the header-read timeout, an idle kept-alive connection by the keep-alive
//! timeout, a trickled body gets 408; connections not yet answered are capped (503, counted)
//! while a finished WebSocket handshake frees its slot; the per-IP WebSocket rate limit answers
//! 429 (counted) without touching other addresses, reads `X-Forwarded-For` only from trusted
//! proxies, and is off by default.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use herald::config::Config;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TRICKLE: Duration = Duration::from_millis(200);

/// Writes `bytes` one at a time until the server ends the connection (a write fails or a read
/// returns end of file); returns what the server sent, or `None` if the bytes ran out first.
async fn trickle_until_closed(s: &mut TcpStream, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    for b in bytes {
        if s.write_all(&[*b]).await.is_err() {
            return Some(got);
        }
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(TRICKLE, s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    None
}

/// Reads until the server closes the connection (panics if it does not within `WAIT`).
async fn read_until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(WAIT, s.read(&mut buf)).await.expect("server closes the connection") {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn config(f: impl FnOnce(&mut Config)) -> Config {
    let mut c = test_config();
    c.metrics_port = Some(0);
    f(&mut c);
    c
}

#[tokio::test]
async fn header_trickled_byte_by_byte_is_closed_by_the_header_read_timeout() {
    let srv = start_with(config(|c| {
        c.http_header_read_timeout = 1;
        c.http_keep_alive_timeout = 1;
    }))
    .await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    // Far more header than the timeout lets through at one byte per TRICKLE.
    let head = format!("GET /up HTTP/1.1\r\nHost: x\r\nX-Slow: {}\r\n\r\n", "a".repeat(200));
    let got = trickle_until_closed(&mut s, head.as_bytes()).await.expect("closed before the head was complete");
    let text = String::from_utf8_lossy(&got);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 408"), "no answer but a timeout: {text}");
    let ops = srv.server.metrics_addr().unwrap();
    assert_eq!(metric(ops, "herald_http_header_timeouts_total").await, 1.0);
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed() {
    // The header-read timeout (30 s) is far beyond WAIT: only the keep-alive timeout can close it.
    let srv = start_with(config(|c| {
        c.http_header_read_timeout = 30;
        c.http_keep_alive_timeout = 1;
    }))
    .await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let got = read_until_closed(&mut s).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "answered, then closed while idle: {text}");
    assert_eq!(text.matches("HTTP/1.1").count(), 1, "{text}");
}

#[tokio::test]
async fn silent_new_connection_is_closed_as_idle() {
    let srv = start_with(config(|c| {
        c.http_header_read_timeout = 30;
        c.http_keep_alive_timeout = 1;
    }))
    .await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    assert!(read_until_closed(&mut s).await.is_empty(), "closed without an answer");
}

#[tokio::test]
async fn request_body_trickled_is_answered_408_and_closed() {
    let srv = start_with(config(|c| c.http_body_read_timeout = 1)).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
        events_path()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let got = trickle_until_closed(&mut s, &[b' '; 1000]).await.expect("closed before the body was sent");
    let resp = parse_response(&got);
    assert_eq!(resp.status, 408, "{resp:?}");
    let ops = srv.server.metrics_addr().unwrap();
    assert_eq!(metric(ops, "herald_http_requests_total{status=\"408\"}").await, 1.0);
}

#[tokio::test]
async fn connections_not_yet_answered_are_capped_and_refusals_counted() {
    let srv = start_with(config(|c| c.max_pending_connections = 2)).await;
    let ops = srv.server.metrics_addr().unwrap();
    let refused = "herald_http_connections_refused_total{listener=\"main\"}";
    // Two silent connections hold both slots (accepted in order, before the third).
    let idle = [TcpStream::connect(srv.addr).await.unwrap(), TcpStream::connect(srv.addr).await.unwrap()];
    let mut third = TcpStream::connect(srv.addr).await.unwrap();
    let got = read_until_closed(&mut third).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 503"), "refused at once: {text}");
    assert_eq!(metric(ops, refused).await, 1.0);

    // Their slots come back when they go.
    drop(idle);
    let mut answered = false;
    for _ in 0..50 {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        if String::from_utf8_lossy(&read_until_closed(&mut s).await).starts_with("HTTP/1.1 200") {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answered, "served again once the silent connections left");
}

#[tokio::test]
async fn finished_websocket_handshake_frees_its_pending_slot() {
    let srv = start_with(config(|c| c.max_pending_connections = 1)).await;
    let mut ws = srv.client().await;
    // The only slot was the WebSocket's until its 101: an HTTP request is served now.
    assert_eq!(raw_http(srv.addr, "GET", "/up", b"").await.status, 200);
    ws.assert_alive().await;
    let ops = srv.server.metrics_addr().unwrap();
    assert_eq!(metric(ops, "herald_http_connections_refused_total{listener=\"main\"}").await, 0.0);
}

/// A WebSocket handshake from `addr` claiming `forwarded_for`; returns the status code.
async fn handshake_status(addr: SocketAddr, forwarded_for: Option<&str>) -> u16 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let xff = forwarded_for.map(|ip| format!("X-Forwarded-For: {ip}\r\n")).unwrap_or_default();
    let req = format!(
        "GET /app/{KEY}?protocol=7 HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{xff}\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, s.read(&mut chunk)).await.expect("answer in time").unwrap();
        assert!(n > 0, "closed before an answer");
        buf.extend_from_slice(&chunk[..n]);
    }
    parse_response(&buf).status
}

#[tokio::test]
async fn per_ip_rate_limit_answers_429_counts_it_and_spares_other_addresses() {
    // Behind a trusted proxy (the test itself, 127.0.0.1): the client is X-Forwarded-For.
    let srv = start_with(config(|c| {
        c.ws_connect_rate_per_ip = 1;
        c.ws_connect_burst_per_ip = 2;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    }))
    .await;
    let ops = srv.server.metrics_addr().unwrap();
    let a = Some("203.0.113.1");
    assert_eq!(handshake_status(srv.addr, a).await, 101);
    assert_eq!(handshake_status(srv.addr, a).await, 101);
    assert_eq!(handshake_status(srv.addr, a).await, 429);
    assert_eq!(metric(ops, "herald_ws_rate_limited_total").await, 1.0);
    // Another address, and the HTTP API, are not affected.
    assert_eq!(handshake_status(srv.addr, Some("203.0.113.2")).await, 101);
    assert_eq!(raw_http(srv.addr, "GET", "/up", b"").await.status, 200);
    assert_eq!(metric(ops, "herald_ws_rate_limited_total").await, 1.0);
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_does_not_dodge_the_limit() {
    let srv = start_with(config(|c| {
        c.ws_connect_rate_per_ip = 1;
        c.ws_connect_burst_per_ip = 1;
    }))
    .await;
    assert_eq!(handshake_status(srv.addr, Some("198.51.100.1")).await, 101);
    // Same peer (127.0.0.1), another claimed address: still the same bucket.
    assert_eq!(handshake_status(srv.addr, Some("198.51.100.2")).await, 429);
}

#[tokio::test]
async fn per_ip_rate_limit_is_off_by_default() {
    let srv = start_with(config(|_| {})).await;
    // More than any burst a limit would allow, from one address.
    for _ in 0..60 {
        assert_eq!(handshake_status(srv.addr, None).await, 101);
    }
    let ops = srv.server.metrics_addr().unwrap();
    assert_eq!(metric(ops, "herald_ws_rate_limited_total").await, 0.0);
}
