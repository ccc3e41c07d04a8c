//! Plain HTTP/1.1 over a fresh TCP connection, and the signed HTTP API client built on it.

use std::net::SocketAddr;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{hmac_hex, md5_hex, now, WAIT};

/// An HTTP response: status and body.
#[derive(Debug)]
pub(crate) struct Resp {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Resp {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("JSON body expected ({e}): {}", self.body))
    }
}

/// Signed HTTP API client (PROTOCOL.md 10.2), implemented independently of herald.
#[derive(Clone)]
pub(crate) struct Api {
    pub addr: SocketAddr,
    pub app_id: String,
    pub key: String,
    pub secret: String,
}

impl Api {
    /// Signed query string for `method path` with extra params and body.
    pub(crate) fn signed_query(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
        timestamp: u64,
    ) -> String {
        let mut params: Vec<(String, String)> = vec![
            ("auth_key".into(), self.key.clone()),
            ("auth_timestamp".into(), timestamp.to_string()),
            ("auth_version".into(), "1.0".into()),
        ];
        if !body.is_empty() {
            params.push(("body_md5".into(), md5_hex(body)));
        }
        for (k, v) in extra {
            params.push(((*k).into(), (*v).into()));
        }
        params.sort();
        let canonical: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let canonical = canonical.join("&");
        let sig = hmac_hex(&self.secret, &format!("{method}\n{path}\n{canonical}"));
        format!("{canonical}&auth_signature={sig}")
    }

    pub(crate) async fn get(&self, path: &str, extra: &[(&str, &str)]) -> Resp {
        let q = self.signed_query("GET", path, extra, b"", now());
        raw_http(self.addr, "GET", &format!("{path}?{q}"), b"").await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Resp {
        let body = body.to_string().into_bytes();
        let q = self.signed_query("POST", path, &[], &body, now());
        raw_http(self.addr, "POST", &format!("{path}?{q}"), &body).await
    }

    pub(crate) async fn trigger(&self, body: Value) -> Resp {
        self.post(&format!("/apps/{}/events", self.app_id), &body).await
    }
}

/// One HTTP/1.1 request over a fresh TCP connection (`Connection: close`).
pub(crate) async fn raw_http(addr: SocketAddr, method: &str, path_and_query: &str, body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).await.expect("tcp connect");
    let mut req = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    s.write_all(&req).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await.expect("response in time").unwrap();
    parse_response(&buf)
}

pub(crate) fn parse_response(buf: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status line");
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_owned() };
    Resp { status, headers: head.to_owned(), body }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
