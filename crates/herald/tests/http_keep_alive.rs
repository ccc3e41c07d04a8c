//! HTTP/1.1 keep-alive on the HTTP API: one TCP connection serves several requests in a row,
//! error responses included.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::net::SocketAddr;

use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads one HTTP/1.1 response (Content-Length or chunked) from a kept-alive connection.
async fn read_response(s: &mut TcpStream) -> Resp {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let body = &buf[end + 4..];
            if let Some(len) = head.lines().find_map(|l| l.strip_prefix("content-length:")) {
                let len: usize = len.trim().parse().unwrap();
                if body.len() >= len {
                    return parse_response(&buf[..end + 4 + len]);
                }
            } else if body.ends_with(b"0\r\n\r\n") {
                return parse_response(&buf);
            }
        }
        let n = tokio::time::timeout(WAIT, s.read(&mut tmp)).await.expect("response in time").unwrap();
        assert!(n > 0, "connection closed mid-response: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&tmp[..n]);
    }
}

async fn send_keepalive(s: &mut TcpStream, addr: SocketAddr, method: &str, target: &str, body: &[u8]) {
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    s.write_all(&req).await.unwrap();
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let srv = start().await;
    let mut c = subscriber(&srv, &["a"]).await;
    let api = srv.api();
    let mut s = TcpStream::connect(srv.addr).await.unwrap();

    let body = json!({"name": "e", "channels": ["a"], "data": "1"}).to_string().into_bytes();
    let q = api.signed_query("POST", &events_path(), &[], &body, now());
    send_keepalive(&mut s, srv.addr, "POST", &format!("{}?{q}", events_path()), &body).await;
    let r1 = read_response(&mut s).await;
    assert_eq!(r1.status, 200, "{r1:?}");
    assert_eq!(r1.json(), json!({}));

    let q = api.signed_query("GET", &channels_path(), &[], b"", now());
    send_keepalive(&mut s, srv.addr, "GET", &format!("{}?{q}", channels_path()), b"").await;
    let r2 = read_response(&mut s).await;
    assert_eq!(r2.status, 200, "{r2:?}");
    assert_eq!(r2.json(), json!({"channels": {"a": {}}}));

    // An error response does not end the connection either.
    send_keepalive(&mut s, srv.addr, "GET", &channels_path(), b"").await;
    let r3 = read_response(&mut s).await;
    assert_eq!(r3.status, 401, "{r3:?}");
    let q = api.signed_query("GET", &channels_path(), &[], b"", now());
    send_keepalive(&mut s, srv.addr, "GET", &format!("{}?{q}", channels_path()), b"").await;
    assert_eq!(read_response(&mut s).await.status, 200);

    assert_eq!(c.recv().await, ev("e", "a", "1"));
}
