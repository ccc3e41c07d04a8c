//! Targets `ws_session` and `ws_frames`: what a connection does with the frames a client sends,
//! on a real hub (one app, local adapter, every feature on), without sockets.
//!
//! `ws_session` drives two connections with a script of text frames; a frame whose `auth` is
//! `"$"` is signed correctly by the harness first, so the fuzzer reaches private, presence and
//! signed-in states it could never sign itself. `ws_frames` feeds raw client → server bytes
//! through tungstenite with herald's own WebSocket settings (`ws::websocket_config`), as the
//! connection task reads them, and hands every text message to one session.
//!
//! Invariants: every frame queued to a client is a JSON object with a string `event` (and a
//! `pusher:error` carries a message); a text message never exceeds the configured limit;
//! webhook events stay balanced (a channel is occupied/vacated, a member added/removed,
//! alternately); once every connection is gone nothing is left (no connection, channel or
//! member), and each channel that was occupied was vacated.

use std::collections::HashMap;
use std::io::{Cursor, Read, Write};
use std::sync::Arc;

use herald_core::adapter::LocalAdapter;
use herald_core::app::{App, AppLimits, StaticAppStore};
use herald_core::events::{ChannelEvent, EventKind, EventSink};
use herald_core::hub::{Hub, HubSettings};
use herald_core::metrics::Metrics;
use herald_core::outbox::Popped;
use herald_core::session::Session;
use herald_protocol::auth::hmac_sha256_hex;
use herald_protocol::inbound::{parse_client_message, ClientMessage};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket};
use tokio_tungstenite::tungstenite::Message;

use super::input::Input;

const APP_ID: &str = "app-1";
const KEY: &str = "key-1";
const SECRET: &str = "secret-1";
/// `max_ws_message_kb` for `ws_frames`: small, so the fuzzer reaches the limit cheaply.
const MAX_WS_MESSAGE_KB: usize = 1;

/// Records the hub's webhook events, in order. Locked only to push or take; never held across
/// a call back into the hub.
#[derive(Default)]
struct Recorder(Mutex<Vec<ChannelEvent>>);

impl EventSink for Recorder {
    fn wants(&self, _app_id: &str, _kind: EventKind) -> bool {
        true
    }
    fn emit(&self, app_id: &str, event: ChannelEvent) {
        assert_eq!(app_id, APP_ID);
        self.0.lock().push(event);
    }
}

fn hub(events: Arc<Recorder>) -> Arc<Hub> {
    let limits = AppLimits {
        enable_client_messages: true,
        enable_subscription_count: true,
        enable_watchlist_events: true,
        // Small limits, so the fuzzer reaches them.
        max_subscriptions_per_connection: 8,
        max_presence_members_per_channel: 3,
        max_watchlist_size: 4,
        ..AppLimits::default()
    };
    let app = App { id: APP_ID.into(), key: KEY.into(), secret: SECRET.into(), limits };
    let metrics = Metrics::new(Arc::new(metrics::NoopRecorder));
    Hub::new(
        Arc::new(StaticAppStore::new([app])),
        HubSettings::default(),
        metrics,
        Some(events),
        Arc::new(LocalAdapter),
    )
}

fn connect(hub: &Arc<Hub>) -> Session {
    let session = hub.connect(KEY, Some("7"), true).expect("the hub admits connections");
    drain(&session);
    session
}

/// Pops every queued frame, checking each; true when the session asked to be closed.
fn drain(session: &Session) -> bool {
    while let Some(popped) = session.connection().outbox.pop() {
        match popped {
            Popped::Frame(bytes) => {
                let frame: Value = serde_json::from_slice(&bytes).expect("every frame is JSON");
                let event = frame["event"].as_str().expect("every frame has a string event");
                if event == "pusher:error" {
                    assert!(frame["data"]["message"].is_string(), "{frame}");
                }
            }
            Popped::Close(req) => {
                assert!(!req.message.is_empty());
                return true;
            }
        }
    }
    false
}

/// `text` with a `"$"` auth replaced by the valid token for this connection.
fn signed(text: &str, socket_id: &str) -> Option<String> {
    let sign = |s: String| format!("{KEY}:{}", hmac_sha256_hex(SECRET.as_bytes(), s.as_bytes()));
    match parse_client_message(text).ok()? {
        ClientMessage::Subscribe { channel, auth: Some(a), channel_data } if a == "$" => {
            let s = match &channel_data {
                Some(cd) => format!("{socket_id}:{channel}:{cd}"),
                None => format!("{socket_id}:{channel}"),
            };
            let mut data = json!({"channel": channel, "auth": sign(s)});
            if let Some(cd) = channel_data {
                data["channel_data"] = json!(cd);
            }
            Some(json!({"event": "pusher:subscribe", "data": data}).to_string())
        }
        ClientMessage::Signin { auth, user_data } if auth == "$" => {
            let auth = sign(format!("{socket_id}::user::{user_data}"));
            Some(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}}).to_string())
        }
        _ => None,
    }
}

/// Handles one text frame as the connection task does (a local adapter never defers).
fn handle(session: &mut Session, text: &str) -> bool {
    if let Some(pending) = session.handle_text(text) {
        session.finish(pending);
    }
    drain(session)
}

/// After every session is gone: nothing left, and the events balanced.
fn check_all_gone(hub: &Hub, events: &Recorder) {
    assert_eq!(hub.connection_count(), 0);
    let ns = hub.namespace(APP_ID);
    assert_eq!(ns.connection_count(), 0);
    assert!(ns.occupied("").is_empty(), "channels left: {:?}", ns.occupied(""));
    let mut occupied: HashMap<Arc<str>, bool> = HashMap::new();
    let mut members: HashMap<(Arc<str>, Arc<str>), bool> = HashMap::new();
    for e in events.0.lock().drain(..) {
        match e {
            ChannelEvent::Occupied { channel } => {
                assert!(!occupied.insert(channel.clone(), true).unwrap_or(false), "{channel} occupied twice");
            }
            ChannelEvent::Vacated { channel } => {
                assert!(occupied.insert(channel.clone(), false).unwrap_or(false), "{channel} vacated while empty");
            }
            ChannelEvent::MemberAdded { channel, user_id } => {
                let was = members.insert((channel.clone(), user_id.clone()), true);
                assert!(!was.unwrap_or(false), "{user_id} added twice to {channel}");
            }
            ChannelEvent::MemberRemoved { channel, user_id } => {
                let was = members.insert((channel.clone(), user_id.clone()), false);
                assert!(was.unwrap_or(false), "{user_id} removed from {channel} while absent");
            }
            _ => {}
        }
    }
    assert!(occupied.values().all(|o| !o), "never vacated: {occupied:?}");
    assert!(members.values().all(|m| !m), "never removed: {members:?}");
}

/// Runs one input: NUL-separated steps, each an op byte then a text frame. Op bit 0 picks the
/// connection; bit 6 drops it and connects a new one instead of sending the frame.
pub fn ws_session(data: &[u8]) {
    let events = Arc::new(Recorder::default());
    let hub = hub(events.clone());
    let mut sessions = [connect(&hub), connect(&hub)];
    let mut input = Input::new(data);
    while !input.is_empty() {
        let op = input.byte();
        let frame = input.field_bytes();
        let i = usize::from(op & 1);
        if op & 0x40 != 0 {
            sessions[i] = connect(&hub);
            continue;
        }
        let Ok(text) = std::str::from_utf8(frame) else { continue };
        let socket_id = sessions[i].connection().socket_id_str.to_string();
        let text = signed(text, &socket_id).unwrap_or_else(|| text.to_owned());
        if handle(&mut sessions[i], &text) {
            // The connection task would close this socket now.
            sessions[i] = connect(&hub);
        }
        for s in &sessions {
            assert!(s.subscription_count() <= 8);
            drain(s);
        }
    }
    drop(sessions);
    check_all_gone(&hub, &events);
}

/// A socket that reads the fuzz input and swallows what is written.
struct Stream(Cursor<Vec<u8>>);

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs one input: the bytes a client sends after the handshake.
pub fn ws_frames(data: &[u8]) {
    let events = Arc::new(Recorder::default());
    let hub = hub(events.clone());
    let mut session = connect(&hub);
    let config = crate::ws::websocket_config(MAX_WS_MESSAGE_KB);
    let mut ws = WebSocket::from_raw_socket(Stream(Cursor::new(data.to_vec())), Role::Server, Some(config));
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => {
                assert!(text.len() <= MAX_WS_MESSAGE_KB * 1024, "a text message over the limit got through");
                if handle(&mut session, &text) {
                    break;
                }
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            // Every read error ends the connection (with a close code or without).
            Err(_) => break,
        }
    }
    drop(session);
    check_all_gone(&hub, &events);
}
