//! Target `inbound_message`: one client → server text frame (PROTOCOL.md 3.1), as a WebSocket
//! text message delivers it, through the parser every connection uses, then through the parsers
//! of the strings it carries (presence `channel_data`, sign-in `user_data`) and the encoder of
//! the frame a client event is relayed as.
//!
//! Invariants: a parsed message, written back as a canonical frame, parses to the same message
//! (nothing lost or invented); compacted JSON (`user_info`, client-event `data` given as an
//! object) means the same value as the text it came from; an accepted `user_id` / `id` obeys
//! its length and character rules; a relayed client event decodes to exactly the event,
//! channel and data that were sent.

use herald_protocol::inbound::{parse_client_message, ClientMessage};
use herald_protocol::outbound;
use herald_protocol::presence::parse_channel_data;
use herald_protocol::user::parse_user_data;
use serde_json::{json, Value};

/// The limits the targets check against (the defaults of `max_user_id_length` and the
/// `#server-to-user-` id limit).
const MAX_USER_ID: usize = 128;
const MAX_SIGNIN_ID: usize = 184;

/// Runs one input. See the module docs.
pub fn inbound_message(data: &[u8]) {
    // tungstenite hands herald only valid UTF-8 text messages.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let msg = match parse_client_message(text) {
        Ok(msg) => msg,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let again = parse_client_message(&canonical_frame(&msg));
    assert_eq!(again.as_ref(), Ok(&msg), "canonical re-encoding of {text:?} parses differently");
    match &msg {
        ClientMessage::Subscribe { channel_data: Some(cd), .. } => check_channel_data(cd),
        ClientMessage::Signin { user_data, .. } => check_user_data(user_data),
        ClientMessage::ClientEvent { event, channel, data } => check_relay(text, event, channel, data),
        _ => {}
    }
}

/// The frame a well-behaved client would send for `msg` (data as an object for `pusher:*`
/// events, as a string for client events).
fn canonical_frame(msg: &ClientMessage) -> String {
    let v = match msg {
        ClientMessage::Ping => json!({"event": "pusher:ping"}),
        ClientMessage::Pong => json!({"event": "pusher:pong"}),
        ClientMessage::Subscribe { channel, auth, channel_data } => {
            let mut data = json!({"channel": channel});
            if let Some(a) = auth {
                data["auth"] = json!(a);
            }
            if let Some(cd) = channel_data {
                data["channel_data"] = json!(cd);
            }
            json!({"event": "pusher:subscribe", "data": data})
        }
        ClientMessage::Unsubscribe { channel } => json!({"event": "pusher:unsubscribe", "data": {"channel": channel}}),
        ClientMessage::Signin { auth, user_data } => {
            json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})
        }
        ClientMessage::ClientEvent { event, channel, data } => {
            json!({"event": event, "channel": channel, "data": data})
        }
        ClientMessage::UnknownPusherEvent(event) => json!({"event": event}),
    };
    v.to_string()
}

/// Parses both texts as JSON values; they must be equal (`compact` changes no meaning).
fn assert_same_json(original: &str, compacted: &str) {
    let a: Result<Value, _> = serde_json::from_str(original);
    let b: Result<Value, _> = serde_json::from_str(compacted);
    match (a, b) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "compacting {original:?} changed its value to {compacted:?}"),
        // serde_json's `Value` refuses some texts its raw-value scanner accepts (numbers out
        // of f64 range): nothing to compare then, but both must agree.
        (Err(_), Err(_)) => {}
        (a, b) => panic!("compacting {original:?} gave {compacted:?}: {a:?} vs {b:?}"),
    }
}

fn check_channel_data(cd: &str) {
    let Ok(member) = parse_channel_data(cd, MAX_USER_ID) else { return };
    assert!(!member.user_id.is_empty());
    assert!(member.user_id.chars().count() <= MAX_USER_ID);
    let raw: std::collections::HashMap<String, &serde_json::value::RawValue> =
        serde_json::from_str(cd).expect("accepted channel_data is an object");
    match (&member.user_info, raw.get("user_info")) {
        (Some(info), Some(original)) => assert_same_json(original.get(), info),
        (None, Some(original)) => assert_eq!(original.get().trim(), "null"),
        (None, None) => {}
        (info, original) => panic!("user_info {info:?} from {original:?}"),
    }
}

fn check_user_data(ud: &str) {
    let Ok(user) = parse_user_data(ud, MAX_SIGNIN_ID) else { return };
    assert!(!user.id.is_empty() && user.id.len() <= MAX_SIGNIN_ID);
    // The id becomes a channel name suffix: it must be a valid `#server-to-user-` name.
    let channel = format!("#server-to-user-{}", user.id);
    assert!(herald_protocol::channel::validate_channel_name(&channel, usize::MAX).is_ok(), "{channel:?}");
    if let Some(info) = &user.user_info {
        assert!(serde_json::from_str::<Value>(info).is_ok(), "user_info {info:?} is not JSON");
    }
}

/// The relayed frame carries exactly what was sent, with `data` as a string; when the client
/// sent an object or a scalar, the string is its compact text.
fn check_relay(text: &str, event: &str, channel: &str, data: &str) {
    let frame: Value = serde_json::from_slice(&outbound::channel_event(event, channel, data, Some("u"))).expect("JSON");
    assert_eq!(frame["event"], json!(event));
    assert_eq!(frame["channel"], json!(channel));
    assert_eq!(frame["data"], json!(data));
    let sent: std::collections::HashMap<String, &serde_json::value::RawValue> =
        serde_json::from_str(text).expect("parsed frames are objects");
    match sent.get("data") {
        None => assert_eq!(data, "null"),
        Some(raw) => match serde_json::from_str::<String>(raw.get()) {
            Ok(s) => assert_eq!(s, data),
            Err(_) => assert_same_json(raw.get(), data),
        },
    }
}
