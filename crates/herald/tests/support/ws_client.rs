//! A tungstenite WebSocket client speaking Pusher JSON frames: connect, send, receive with
//! timeouts, subscribe (with auth signed by the test app's secret), sign in, and observe closes.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{channel_auth, user_auth, QUIET, WAIT};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw WebSocket client speaking Pusher JSON frames.
pub(crate) struct Client {
    pub ws: Ws,
    pub socket_id: String,
}

/// How a connection ended, as seen by the client.
#[derive(Debug, PartialEq)]
pub(crate) struct Closed {
    pub code: u16,
    pub reason: String,
}

impl Client {
    pub(crate) async fn connect(url: &str) -> Ws {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("websocket handshake");
        ws
    }

    pub(crate) async fn connect_established(url: &str) -> Client {
        let mut ws = Self::connect(url).await;
        let first = next_json(&mut ws).await.expect("first frame");
        assert_eq!(first["event"], "pusher:connection_established", "first frame: {first}");
        let data: Value = serde_json::from_str(first["data"].as_str().expect("data is a JSON string")).unwrap();
        let socket_id = data["socket_id"].as_str().unwrap().to_owned();
        Client { ws, socket_id }
    }

    pub(crate) async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.expect("send");
    }

    pub(crate) async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_owned())).await.expect("send");
    }

    /// Next JSON frame; panics on timeout or close.
    pub(crate) async fn recv(&mut self) -> Value {
        next_json(&mut self.ws).await.expect("a frame before timeout/close")
    }

    /// Next frame whose `event` is `event`, skipping others.
    pub(crate) async fn recv_event(&mut self, event: &str) -> Value {
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
    pub(crate) async fn expect_silence(&mut self) {
        if let Ok(Some(Ok(msg))) = tokio::time::timeout(QUIET, self.ws.next()).await {
            panic!("expected no frame, got {msg:?}");
        }
    }

    pub(crate) async fn subscribe(&mut self, channel: &str) -> Value {
        self.send(json!({"event": "pusher:subscribe", "data": {"auth": "", "channel": channel}})).await;
        self.recv().await
    }

    pub(crate) async fn subscribe_private(&mut self, channel: &str) -> Value {
        let auth = channel_auth(&self.socket_id, channel, None);
        self.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": channel}})).await;
        self.recv().await
    }

    pub(crate) async fn subscribe_presence(&mut self, channel: &str, channel_data: &str) -> Value {
        let auth = channel_auth(&self.socket_id, channel, Some(channel_data));
        self.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": channel, "channel_data": channel_data}}))
            .await;
        self.recv().await
    }

    /// Waits for the server to close the connection; returns the close code and reason.
    pub(crate) async fn closed(&mut self) -> Closed {
        closed(&mut self.ws).await
    }

    /// Proves the connection is open and processing: `pusher:ping` is answered with a pong.
    pub(crate) async fn assert_alive(&mut self) {
        self.send(json!({"event": "pusher:ping", "data": {}})).await;
        let pong = self.recv_event("pusher:pong").await;
        assert_eq!(pong, json!({"event": "pusher:pong", "data": "{}"}));
    }

    /// Next frame, asserted to be a `pusher:error`; returns its `data` object.
    pub(crate) async fn recv_error(&mut self) -> Value {
        let f = self.recv().await;
        assert_eq!(f["event"], "pusher:error", "expected pusher:error, got {f}");
        assert!(f.get("channel").is_none(), "pusher:error must not carry a channel: {f}");
        f["data"].clone()
    }

    pub(crate) async fn signin(&mut self, user_data: &str) -> Value {
        let auth = user_auth(&self.socket_id, user_data);
        self.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})).await;
        self.recv().await
    }
}

pub(crate) async fn closed(ws: &mut Ws) -> Closed {
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
pub(crate) async fn next_json(ws: &mut Ws) -> Option<Value> {
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
pub(crate) fn data_of(frame: &Value) -> Value {
    match &frame["data"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        other => other.clone(),
    }
}

/// WebSocket handshake with extra request headers (e.g. `X-Forwarded-Proto`).
pub(crate) async fn connect_with_headers(url: &str, headers: &[(&'static str, &str)]) -> Ws {
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
