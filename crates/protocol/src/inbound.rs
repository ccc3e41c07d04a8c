//! Client → server frame parsing (3.1, 2.6 "Client → server frames").
//!
//! Owns the tolerant decoding of everything a WebSocket client may send: `data` absent, an
//! object, or a string holding a JSON object for `pusher:*` events (pusher-js, Java and other
//! clients differ), and client events whose `data` must be relayed as a JSON string (7.2).
//! Strings that are later signed (`channel_data`, `user_data`) are returned exactly as decoded
//! from the frame, never re-serialized.

use crate::json;
use serde_json::value::RawValue;
use std::collections::HashMap;

/// A decoded client frame.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// `pusher:ping`: answered with `pusher:pong`.
    Ping,
    /// `pusher:pong`: the answer to the server's liveness probe.
    Pong,
    /// `pusher:subscribe`.
    Subscribe {
        /// The channel name.
        channel: String,
        /// `{key}:{signature}` for private, presence and encrypted channels.
        auth: Option<String>,
        /// Presence: the signed JSON text with `user_id` and `user_info`.
        channel_data: Option<String>,
    },
    /// `pusher:unsubscribe`.
    Unsubscribe {
        /// The channel name.
        channel: String,
    },
    /// `pusher:signin` (user authentication, 8.1).
    Signin {
        /// `{key}:{signature}` over `socket_id::user:user_data`.
        auth: String,
        /// The signed JSON text describing the user.
        user_data: String,
    },
    /// `data` is the text to relay as the JSON *string* value of "data" (7.2): if the client sent a
    /// string, that string unchanged; otherwise the compact JSON serialization of the value ("null" if absent).
    ClientEvent {
        /// The `client-` event name.
        event: String,
        /// The channel it is sent on.
        channel: String,
        /// The data to relay, as described above.
        data: String,
    },
    /// a pusher:* / pusher_internal:* name we do not handle: ignore
    UnknownPusherEvent(String),
}

/// Why a frame could not be turned into a [`ClientMessage`]; `Display` is the `pusher:error`
/// message (code `null`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InboundError {
    /// The frame is not a JSON object.
    #[error("Invalid JSON: {0}")]
    InvalidJson(String),
    /// The object has no string `event`.
    #[error("Missing event name")]
    MissingEvent,
    /// An event that is neither a known `pusher:` event nor a `client-` event.
    #[error("Unsupported event: {0}")]
    UnsupportedEvent(String),
    /// A known event whose `data` lacks a field or has the wrong type.
    #[error("Invalid {event} data: {reason}")]
    InvalidData {
        /// The event name.
        event: String,
        /// What is wrong with its data.
        reason: String,
    },
    /// A client event without a channel.
    #[error("Client event {0} requires a channel")]
    MissingChannel(String),
}

type Fields<'a> = HashMap<String, &'a RawValue>;

fn invalid_data(event: &str, reason: &str) -> InboundError {
    InboundError::InvalidData { event: event.to_owned(), reason: reason.to_owned() }
}

/// `data` for pusher:* events may be absent, an object, or a string containing a JSON object
/// (parse it). Subscribe: `channel` must be a string; `auth` string (may be ""); `channel_data`
/// must be a string if present (if it is an object, serialize compactly — lenient). Signin:
/// `auth` and `user_data` strings required.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, InboundError> {
    let frame = json::object_fields(text).map_err(|e| InboundError::InvalidJson(e.to_string()))?;
    let event = frame
        .get("event")
        .and_then(|raw| json::as_string(raw))
        .filter(|e| !e.is_empty())
        .ok_or(InboundError::MissingEvent)?;
    let data = frame.get("data").copied();

    match event.as_str() {
        "pusher:ping" => Ok(ClientMessage::Ping),
        "pusher:pong" => Ok(ClientMessage::Pong),
        "pusher:subscribe" => with_pusher_data(&event, data, |f| {
            Ok(ClientMessage::Subscribe {
                channel: required_string(&event, f, "channel")?,
                auth: optional_string(&event, f, "auth")?,
                channel_data: match f.get("channel_data").filter(|r| !json::is_null(r)) {
                    None => None,
                    Some(raw) if json::is_object(raw) => Some(json::compact(raw.get())),
                    Some(raw) => Some(
                        json::as_string(raw).ok_or_else(|| invalid_data(&event, "channel_data must be a string"))?,
                    ),
                },
            })
        }),
        "pusher:unsubscribe" => with_pusher_data(&event, data, |f| {
            Ok(ClientMessage::Unsubscribe { channel: required_string(&event, f, "channel")? })
        }),
        "pusher:signin" => with_pusher_data(&event, data, |f| {
            Ok(ClientMessage::Signin {
                auth: required_string(&event, f, "auth")?,
                user_data: required_string(&event, f, "user_data")?,
            })
        }),
        e if e.starts_with("pusher:") || e.starts_with("pusher_internal:") => {
            Ok(ClientMessage::UnknownPusherEvent(event))
        }
        e if e.starts_with("client-") => {
            let channel = frame
                .get("channel")
                .and_then(|raw| json::as_string(raw))
                .ok_or_else(|| InboundError::MissingChannel(event.clone()))?;
            let data = match data {
                None => "null".to_owned(),
                Some(raw) => match json::as_string(raw) {
                    Some(s) => s,
                    None => json::compact(raw.get()),
                },
            };
            Ok(ClientMessage::ClientEvent { event, channel, data })
        }
        _ => Err(InboundError::UnsupportedEvent(event)),
    }
}

/// Normalises the three accepted `data` encodings of `pusher:*` events into an object's fields
/// and hands them to `f` (the fields may borrow from a temporary decoded string).
fn with_pusher_data<T>(
    event: &str,
    data: Option<&RawValue>,
    f: impl FnOnce(&Fields<'_>) -> Result<T, InboundError>,
) -> Result<T, InboundError> {
    match data {
        None => f(&Fields::new()),
        Some(raw) if json::is_null(raw) => f(&Fields::new()),
        Some(raw) if json::is_string(raw) => {
            let inner = json::as_string(raw).ok_or_else(|| invalid_data(event, "data is not a valid string"))?;
            let fields = json::object_fields(&inner)
                .map_err(|_| invalid_data(event, "data string does not contain a JSON object"))?;
            f(&fields)
        }
        Some(raw) => {
            let fields = json::object_fields(raw.get()).map_err(|_| invalid_data(event, "data must be an object"))?;
            f(&fields)
        }
    }
}

fn required_string(event: &str, f: &Fields<'_>, key: &str) -> Result<String, InboundError> {
    f.get(key)
        .and_then(|raw| json::as_string(raw))
        .ok_or_else(|| InboundError::InvalidData { event: event.to_owned(), reason: format!("{key} must be a string") })
}

fn optional_string(event: &str, f: &Fields<'_>, key: &str) -> Result<Option<String>, InboundError> {
    match f.get(key).filter(|r| !json::is_null(r)) {
        None => Ok(None),
        Some(_) => required_string(event, f, key).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ClientMessage, InboundError> {
        parse_client_message(s)
    }

    fn subscribe(channel: &str, auth: Option<&str>, cd: Option<&str>) -> ClientMessage {
        ClientMessage::Subscribe {
            channel: channel.into(),
            auth: auth.map(Into::into),
            channel_data: cd.map(Into::into),
        }
    }

    #[test]
    fn ping_with_data_absent_object_or_string() {
        for s in [
            r#"{"event":"pusher:ping"}"#,
            r#"{"event":"pusher:ping","data":{}}"#,
            r#"{"event":"pusher:ping","data":"{}"}"#,
            r#"{"event":"pusher:ping","data":null}"#,
        ] {
            assert_eq!(parse(s), Ok(ClientMessage::Ping), "{s}");
        }
        assert_eq!(parse(r#"{"event":"pusher:pong","data":{}}"#), Ok(ClientMessage::Pong));
    }

    #[test]
    fn pusher_js_public_subscribe_parsed() {
        assert_eq!(
            parse(r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"my-channel"}}"#),
            Ok(subscribe("my-channel", Some(""), None))
        );
    }

    #[test]
    fn java_subscribe_without_auth_parsed() {
        assert_eq!(
            parse(r#"{"event":"pusher:subscribe","data":{"channel":"my-channel"}}"#),
            Ok(subscribe("my-channel", None, None))
        );
    }

    #[test]
    fn subscribe_with_data_as_string_containing_json_parsed() {
        assert_eq!(
            parse(r#"{"event":"pusher:subscribe","data":"{\"channel\":\"private-x\",\"auth\":\"k:s\"}"}"#),
            Ok(subscribe("private-x", Some("k:s"), None))
        );
    }

    #[test]
    fn presence_channel_data_string_kept_exactly() {
        let frame = r#"{"event":"pusher:subscribe","data":{"auth":"k:s","channel_data":"{\"user_id\": \"u-1\", \"user_info\": {\"name\": \"Ada\"}}","channel":"presence-room"}}"#;
        assert_eq!(
            parse(frame),
            Ok(subscribe("presence-room", Some("k:s"), Some(r#"{"user_id": "u-1", "user_info": {"name": "Ada"}}"#)))
        );
    }

    #[test]
    fn channel_data_object_is_compacted_leniently() {
        let frame = r#"{"event":"pusher:subscribe","data":{"channel":"presence-r","auth":"k:s","channel_data":{"user_id": "u", "b":1}}}"#;
        assert_eq!(parse(frame), Ok(subscribe("presence-r", Some("k:s"), Some(r#"{"user_id":"u","b":1}"#))));
    }

    #[test]
    fn subscribe_without_data_or_channel_is_invalid_data() {
        let e = parse(r#"{"event":"pusher:subscribe"}"#).unwrap_err();
        assert_eq!(e.to_string(), "Invalid pusher:subscribe data: channel must be a string");
        assert!(matches!(
            parse(r#"{"event":"pusher:subscribe","data":{"channel":5}}"#),
            Err(InboundError::InvalidData { .. })
        ));
        assert!(matches!(
            parse(r#"{"event":"pusher:subscribe","data":{"channel":"x","auth":5}}"#),
            Err(InboundError::InvalidData { .. })
        ));
        assert!(matches!(
            parse(r#"{"event":"pusher:subscribe","data":{"channel":"x","channel_data":5}}"#),
            Err(InboundError::InvalidData { .. })
        ));
    }

    #[test]
    fn pusher_data_of_wrong_type_is_invalid_data() {
        for s in [
            r#"{"event":"pusher:subscribe","data":[1]}"#,
            r#"{"event":"pusher:subscribe","data":"not json"}"#,
            r#"{"event":"pusher:subscribe","data":"[1]"}"#,
            r#"{"event":"pusher:subscribe","data":7}"#,
        ] {
            assert!(matches!(parse(s), Err(InboundError::InvalidData { .. })), "{s}");
        }
    }

    #[test]
    fn unsubscribe_parsed() {
        assert_eq!(
            parse(r#"{"event":"pusher:unsubscribe","data":{"channel":"my-channel"}}"#),
            Ok(ClientMessage::Unsubscribe { channel: "my-channel".into() })
        );
    }

    #[test]
    fn signin_user_data_string_kept_exactly() {
        let frame = r#"{"event":"pusher:signin","data":{"auth":"k:33a6","user_data":"{\"id\":\"u-1\",\"user_info\":{\"name\":\"Ada\"},\"watchlist\":[\"u-2\",\"u-3\"]}"}}"#;
        assert_eq!(
            parse(frame),
            Ok(ClientMessage::Signin {
                auth: "k:33a6".into(),
                user_data: r#"{"id":"u-1","user_info":{"name":"Ada"},"watchlist":["u-2","u-3"]}"#.into(),
            })
        );
        assert!(matches!(
            parse(r#"{"event":"pusher:signin","data":{"auth":"k:s"}}"#),
            Err(InboundError::InvalidData { .. })
        ));
    }

    #[test]
    fn client_event_with_object_data_becomes_compact_json_string() {
        let frame = r#"{"event":"client-typing","data":{ "typing" : true, "a": [1, 2] },"channel":"presence-room"}"#;
        assert_eq!(
            parse(frame),
            Ok(ClientMessage::ClientEvent {
                event: "client-typing".into(),
                channel: "presence-room".into(),
                data: r#"{"typing":true,"a":[1,2]}"#.into(),
            })
        );
    }

    #[test]
    fn client_event_with_string_data_unchanged() {
        let frame = r#"{"event":"client-x","channel":"private-a","data":"{\"typing\": true}"}"#;
        assert_eq!(
            parse(frame),
            Ok(ClientMessage::ClientEvent {
                event: "client-x".into(),
                channel: "private-a".into(),
                data: r#"{"typing": true}"#.into(),
            })
        );
    }

    #[test]
    fn client_event_without_data_relays_null_and_scalars_relay_their_text() {
        let m = parse(r#"{"event":"client-x","channel":"private-a"}"#).unwrap();
        assert!(matches!(m, ClientMessage::ClientEvent { ref data, .. } if data == "null"));
        let m = parse(r#"{"event":"client-x","channel":"private-a","data":42}"#).unwrap();
        assert!(matches!(m, ClientMessage::ClientEvent { ref data, .. } if data == "42"));
    }

    #[test]
    fn client_event_missing_channel_rejected() {
        assert_eq!(parse(r#"{"event":"client-x","data":{}}"#), Err(InboundError::MissingChannel("client-x".into())));
        assert_eq!(parse(r#"{"event":"client-x","channel":1}"#), Err(InboundError::MissingChannel("client-x".into())));
    }

    #[test]
    fn unknown_pusher_event_is_ignorable() {
        assert_eq!(
            parse(r#"{"event":"pusher:foo","data":[]}"#),
            Ok(ClientMessage::UnknownPusherEvent("pusher:foo".into()))
        );
        assert_eq!(
            parse(r#"{"event":"pusher_internal:subscription_succeeded"}"#),
            Ok(ClientMessage::UnknownPusherEvent("pusher_internal:subscription_succeeded".into()))
        );
    }

    #[test]
    fn non_client_event_is_unsupported() {
        let e = parse(r#"{"event":"foo","channel":"private-a","data":{}}"#).unwrap_err();
        assert_eq!(e, InboundError::UnsupportedEvent("foo".into()));
        assert_eq!(e.to_string(), "Unsupported event: foo");
    }

    #[test]
    fn missing_or_non_string_event_rejected() {
        for s in [r#"{"data":{}}"#, r#"{"event":1}"#, r#"{"event":""}"#, r#"{"event":null}"#] {
            assert_eq!(parse(s), Err(InboundError::MissingEvent), "{s}");
        }
    }

    #[test]
    fn invalid_json_rejected() {
        for s in ["", "{", "nope", r#"{"event":"pusher:ping""#, "\u{0}"] {
            assert!(matches!(parse(s), Err(InboundError::InvalidJson(_))), "{s:?}");
        }
    }

    #[test]
    fn top_level_array_or_scalar_is_invalid_json() {
        for s in [r#"["pusher:ping"]"#, "\"pusher:ping\"", "1", "null"] {
            assert!(matches!(parse(s), Err(InboundError::InvalidJson(_))), "{s}");
        }
    }

    #[test]
    fn deeply_nested_data_does_not_overflow_the_stack() {
        let deep = format!(
            r#"{{"event":"client-x","channel":"private-a","data":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        // serde_json skips raw values iteratively: no recursion, so no stack overflow; the
        // value is relayed as-is (size limits are the caller's job).
        match parse(&deep) {
            Ok(ClientMessage::ClientEvent { data, .. }) => assert_eq!(data.len(), 200_000),
            other => panic!("unexpected {other:?}"),
        }
        let deep_sub = format!(
            r#"{{"event":"pusher:subscribe","data":{{"channel":"x","a":{}{}}}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let _ = parse(&deep_sub);
    }
}
