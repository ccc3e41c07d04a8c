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
        shutdown_drain_window_ms: 0,
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

// ---- Helpers for the ws_* and shutdown tests ----

/// `test_config()` with the standard app's limits adjusted by `f`.
pub fn config_with_limits(f: impl FnOnce(&mut AppLimits)) -> Config {
    let mut c = test_config();
    f(&mut c.apps[0].limits);
    c
}

/// WebSocket handshake with extra request headers (e.g. `X-Forwarded-Proto`).
pub async fn connect_with_headers(url: &str, headers: &[(&'static str, &str)]) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().expect("valid ws url");
    for (name, value) in headers {
        req.headers_mut().insert(*name, value.parse().expect("header value"));
    }
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
        .await
        .expect("connect in time")
        .expect("websocket handshake");
    ws
}

impl Client {
    /// Proves the connection is open and processing: `pusher:ping` is answered with a pong.
    pub async fn assert_alive(&mut self) {
        self.send(json!({"event": "pusher:ping", "data": {}})).await;
        let pong = self.recv_event("pusher:pong").await;
        assert_eq!(pong, json!({"event": "pusher:pong", "data": "{}"}));
    }

    /// Next frame, asserted to be a `pusher:error`; returns its `data` object.
    pub async fn recv_error(&mut self) -> Value {
        let f = self.recv().await;
        assert_eq!(f["event"], "pusher:error", "expected pusher:error, got {f}");
        assert!(f.get("channel").is_none(), "pusher:error must not carry a channel: {f}");
        f["data"].clone()
    }

    pub async fn signin(&mut self, user_data: &str) -> Value {
        let auth = user_auth(&self.socket_id, user_data);
        self.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})).await;
        self.recv().await
    }
}

/// Value of an unlabelled metric in `GET /metrics` (0 when not yet exported).
pub async fn metric(addr: SocketAddr, name: &str) -> f64 {
    let resp = raw_http(addr, "GET", "/metrics", b"").await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.body
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().expect("metric value"))
}

/// Polls `cond` until it holds or `within` elapses; returns whether it held.
pub async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// One frame as read by [`RawWs`].
#[derive(Debug, Clone, PartialEq)]
pub struct RawFrame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl RawFrame {
    pub const TEXT: u8 = 1;
    pub const BINARY: u8 = 2;
    pub const CLOSE: u8 = 8;
    pub const PING: u8 = 9;
    pub const PONG: u8 = 10;

    pub fn json(&self) -> Value {
        assert_eq!(self.opcode, Self::TEXT, "not a text frame: {self:?}");
        serde_json::from_slice(&self.payload).expect("server sent valid JSON")
    }

    /// Close code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == Self::CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// A minimal WebSocket client over a plain `TcpStream`: unlike tungstenite it never answers
/// anything by itself (no automatic Pong), and it can send arbitrary frames.
pub struct RawWs {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Handshake on `path_and_query`; panics unless the server answers 101.
    pub async fn connect(addr: SocketAddr, path_and_query: &str) -> RawWs {
        let mut stream = TcpStream::connect(addr).await.expect("tcp connect");
        let req = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = tokio::time::timeout(WAIT, stream.read(&mut chunk)).await.expect("handshake in time").unwrap();
            assert!(n > 0, "connection closed during handshake");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "handshake refused: {head}");
        buf.drain(..head_end);
        RawWs { stream, buf }
    }

    /// Next frame; `None` once the server closed the TCP connection. Panics on timeout.
    pub async fn read_frame(&mut self) -> Option<RawFrame> {
        loop {
            if let Some((frame, used)) = Self::parse(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = match tokio::time::timeout(WAIT, self.stream.read(&mut chunk)).await.expect("frame in time") {
                Ok(n) => n,
                Err(_) => return None,
            };
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn parse(b: &[u8]) -> Option<(RawFrame, usize)> {
        if b.len() < 2 {
            return None;
        }
        let opcode = b[0] & 0x0f;
        assert_eq!(b[1] & 0x80, 0, "server frames must not be masked");
        let (len, mut at) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize, 10),
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        if b.len() < at + len {
            return None;
        }
        let payload = b[at..at + len].to_vec();
        at += len;
        Some((RawFrame { opcode, payload }, at))
    }

    /// Sends one masked frame (FIN set).
    pub async fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        let mut out = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&out).await.expect("raw send");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send_frame(RawFrame::TEXT, text.as_bytes()).await;
    }
}

// ---- Helpers for the webhooks_* tests ----

/// One request received by a [`WebhookReceiver`].
#[derive(Debug, Clone)]
pub struct WebhookHit {
    /// Header names lower-cased.
    pub headers: std::collections::HashMap<String, String>,
    pub body: String,
    /// What the receiver answered.
    pub status: u16,
}

impl WebhookHit {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("webhook body is JSON")
    }
}

/// Receiver behaviour, shared with its handler. A mutex: tests flip it while requests run.
struct ReceiverState {
    hits: std::sync::Mutex<Vec<WebhookHit>>,
    status: std::sync::atomic::AtomicU16,
    hang: std::sync::atomic::AtomicBool,
}

/// A local webhook endpoint on 127.0.0.1:0 that records every request. Answers `status`
/// (200 by default) or, with `hang`, never answers.
#[derive(Clone)]
pub struct WebhookReceiver {
    pub addr: SocketAddr,
    state: std::sync::Arc<ReceiverState>,
}

impl WebhookReceiver {
    pub async fn start() -> WebhookReceiver {
        use axum::extract::State;
        use std::sync::atomic::Ordering;
        let state = std::sync::Arc::new(ReceiverState {
            hits: Default::default(),
            status: std::sync::atomic::AtomicU16::new(200),
            hang: Default::default(),
        });
        async fn hook(
            State(st): State<std::sync::Arc<ReceiverState>>,
            headers: axum::http::HeaderMap,
            body: String,
        ) -> axum::http::StatusCode {
            if st.hang.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            let status = st.status.load(Ordering::SeqCst);
            let headers =
                headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
            st.hits.lock().unwrap().push(WebhookHit { headers, body, status });
            axum::http::StatusCode::from_u16(status).unwrap()
        }
        let app = axum::Router::new().route("/hook", axum::routing::post(hook)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        WebhookReceiver { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn set_status(&self, status: u16) {
        self.state.status.store(status, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn set_hang(&self, hang: bool) {
        self.state.hang.store(hang, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every request so far, including failed ones.
    pub fn hits(&self) -> Vec<WebhookHit> {
        self.state.hits.lock().unwrap().clone()
    }

    /// Requests answered with a 2xx.
    pub fn delivered(&self) -> Vec<WebhookHit> {
        self.hits().into_iter().filter(|h| (200..300).contains(&h.status)).collect()
    }

    /// The events of every delivered request, in arrival order.
    pub fn events(&self) -> Vec<Value> {
        self.delivered().iter().flat_map(|h| h.json()["events"].as_array().cloned().unwrap_or_default()).collect()
    }

    /// Waits until `n` events were delivered; returns them. Panics after `within`.
    pub async fn wait_events(&self, n: usize, within: Duration) -> Vec<Value> {
        let ok = eventually(within, || self.events().len() >= n).await;
        let events = self.events();
        assert!(ok, "expected {n} webhook events within {within:?}, got {}: {events:#?}", events.len());
        events
    }
}

/// A fresh, empty temp directory for `data_dir`, unique per process and name.
pub fn temp_data_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("herald-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `test_config()` with one webhook target (all `event_types`) on the standard app, short
/// delays (removal 300 ms, retries from 50 ms) and a temp `data_dir`.
pub fn webhook_config(url: &str, event_types: &[&str], data_dir: &str) -> Config {
    use herald::webhooks::config::{AppWebhooks, EventMask, WebhookTarget};
    let mut c = test_config();
    let mut mask = EventMask::default();
    for t in event_types {
        assert!(mask.insert(t), "unknown event type {t}");
    }
    let target = WebhookTarget { url: url.to_owned(), event_types: mask, filter: Default::default(), headers: vec![] };
    c.webhooks.insert(APP_ID.to_owned(), AppWebhooks { batch: false, targets: vec![target] });
    c.data_dir = temp_data_dir(data_dir);
    c.webhook_removal_delay_ms = 300;
    c.webhook_retry_initial_ms = 50;
    c.webhook_batch_ms = 20;
    c
}

/// Names of events, for compact assertions.
pub fn names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{}:{}", e["name"].as_str().unwrap_or("?"), e["channel"].as_str().unwrap_or("?")))
        .collect()
}
