//! Test harness shared by the black-box tests: starts herald on port 0 in-process and talks
//! to it only through real sockets — a WebSocket client and signed HTTP requests, both
//! implemented here independently of herald's own signing code.
#![allow(dead_code)] // each test file uses a different subset of the helpers

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use herald::config::Config;
use herald_core::app::{App, AppLimits};

pub const APP_ID: &str = "app-id";
pub const KEY: &str = "app-key";
pub const SECRET: &str = "app-secret";

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be reasonably sure something does NOT happen.
pub const QUIET: Duration = Duration::from_millis(300);

pub fn app(id: &str, key: &str, secret: &str) -> App {
    App {
        id: id.into(),
        key: key.into(),
        secret: secret.into(),
        limits: AppLimits { enable_client_messages: true, ..AppLimits::default() },
    }
}

/// A config on 127.0.0.1:0 with the standard test app (client events on).
pub fn test_config() -> Config {
    Config {
        host: "127.0.0.1".into(),
        port: 0,
        apps: vec![app(APP_ID, KEY, SECRET)],
        default_app_in_use: false,
        shutdown_grace: 2,
        ..Config::default()
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub server: herald::RunningServer,
}

pub async fn start() -> TestServer {
    start_with(test_config()).await
}

pub async fn start_with(config: Config) -> TestServer {
    let server = herald::start(config).await.expect("server starts");
    TestServer { addr: server.local_addr(), server }
}

impl TestServer {
    pub fn ws_url(&self, key: &str) -> String {
        format!("ws://{}/app/{key}?protocol=7&client=js&version=8.4.0&flash=false", self.addr)
    }

    /// A connected client that has received `connection_established`.
    pub async fn client(&self) -> Client {
        Client::connect_established(&self.ws_url(KEY)).await
    }

    pub fn api(&self) -> Api {
        Api { addr: self.addr, app_id: APP_ID.into(), key: KEY.into(), secret: SECRET.into() }
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw WebSocket client speaking Pusher JSON frames.
pub struct Client {
    pub ws: Ws,
    pub socket_id: String,
}

/// How a connection ended, as seen by the client.
#[derive(Debug, PartialEq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl Client {
    pub async fn connect(url: &str) -> Ws {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("websocket handshake");
        ws
    }

    pub async fn connect_established(url: &str) -> Client {
        let mut ws = Self::connect(url).await;
        let first = next_json(&mut ws).await.expect("first frame");
        assert_eq!(first["event"], "pusher:connection_established", "first frame: {first}");
        let data: Value = serde_json::from_str(first["data"].as_str().expect("data is a JSON string")).unwrap();
        let socket_id = data["socket_id"].as_str().unwrap().to_owned();
        Client { ws, socket_id }
    }

    pub async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.expect("send");
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_owned())).await.expect("send");
    }

    /// Next JSON frame; panics on timeout or close.
    pub async fn recv(&mut self) -> Value {
        next_json(&mut self.ws).await.expect("a frame before timeout/close")
    }

    /// Next frame whose `event` is `event`, skipping others.
    pub async fn recv_event(&mut self, event: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let v = tokio::time::timeout_at(deadline, next_json(&mut self.ws))
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {event}"))
                .unwrap_or_else(|| panic!("closed while waiting for {event}"));
            if v["event"] == event {
                return v;
            }
        }
    }

    /// Asserts no frame arrives for a short while.
    pub async fn expect_silence(&mut self) {
        if let Ok(Some(Ok(msg))) = tokio::time::timeout(QUIET, self.ws.next()).await {
            panic!("expected no frame, got {msg:?}");
        }
    }

    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.send(json!({"event": "pusher:subscribe", "data": {"auth": "", "channel": channel}})).await;
        self.recv().await
    }

    pub async fn subscribe_private(&mut self, channel: &str) -> Value {
        let auth = channel_auth(&self.socket_id, channel, None);
        self.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": channel}})).await;
        self.recv().await
    }

    pub async fn subscribe_presence(&mut self, channel: &str, channel_data: &str) -> Value {
        let auth = channel_auth(&self.socket_id, channel, Some(channel_data));
        self.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": channel, "channel_data": channel_data}}))
            .await;
        self.recv().await
    }

    /// Waits for the server to close the connection; returns the close code and reason.
    pub async fn closed(&mut self) -> Closed {
        closed(&mut self.ws).await
    }
}

pub async fn closed(ws: &mut Ws) -> Closed {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await.expect("close before timeout") {
            Some(Ok(Message::Close(Some(f)))) => {
                return Closed { code: u16::from(f.code), reason: f.reason.to_string() };
            }
            Some(Ok(Message::Close(None))) => {
                return Closed { code: u16::from(CloseCode::Status), reason: String::new() }
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("socket error instead of a close frame: {e}"),
            None => panic!("stream ended without a close frame"),
        }
    }
}

/// Next text frame parsed as JSON (None on close); skips WS ping/pong frames.
pub async fn next_json(ws: &mut Ws) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next()).await.expect("frame before timeout")?;
        match msg.ok()? {
            Message::Text(t) => return Some(serde_json::from_str(&t).expect("server sent valid JSON")),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

/// Parses a double-encoded `data` field.
pub fn data_of(frame: &Value) -> Value {
    match &frame["data"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        other => other.clone(),
    }
}

pub fn hmac_hex(secret: &str, msg: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(msg.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// `auth` for a private/presence subscription, signed with the test app's secret.
pub fn channel_auth(socket_id: &str, channel: &str, channel_data: Option<&str>) -> String {
    let msg = match channel_data {
        Some(cd) => format!("{socket_id}:{channel}:{cd}"),
        None => format!("{socket_id}:{channel}"),
    };
    format!("{KEY}:{}", hmac_hex(SECRET, &msg))
}

pub fn user_auth(socket_id: &str, user_data: &str) -> String {
    format!("{KEY}:{}", hmac_hex(SECRET, &format!("{socket_id}::user::{user_data}")))
}

/// An HTTP response: status and body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("JSON body expected ({e}): {}", self.body))
    }
}

/// Signed HTTP API client (PROTOCOL.md 10.2), implemented independently of herald.
#[derive(Clone)]
pub struct Api {
    pub addr: SocketAddr,
    pub app_id: String,
    pub key: String,
    pub secret: String,
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

pub fn md5_hex(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

impl Api {
    /// Signed query string for `method path` with extra params and body.
    pub fn signed_query(
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

    pub async fn get(&self, path: &str, extra: &[(&str, &str)]) -> Resp {
        let q = self.signed_query("GET", path, extra, b"", now());
        raw_http(self.addr, "GET", &format!("{path}?{q}"), b"").await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        let body = body.to_string().into_bytes();
        let q = self.signed_query("POST", path, &[], &body, now());
        raw_http(self.addr, "POST", &format!("{path}?{q}"), &body).await
    }

    pub async fn trigger(&self, body: Value) -> Resp {
        self.post(&format!("/apps/{}/events", self.app_id), &body).await
    }
}

/// One HTTP/1.1 request over a fresh TCP connection (`Connection: close`).
pub async fn raw_http(addr: SocketAddr, method: &str, path_and_query: &str, body: &[u8]) -> Resp {
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

pub fn parse_response(buf: &[u8]) -> Resp {
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
