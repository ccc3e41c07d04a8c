//! Server → client frame encoding (3.2, the 2.6 double-encoding table).
//!
//! Owns the exact wire shape of every frame herald sends. Whether `data` is a JSON *string*
//! holding JSON text or a plain object differs per event and matters to non-JS clients (the
//! Java client casts `data` to `String`), so the encodings live here and nowhere else. Every
//! user-supplied string is escaped by `serde_json`; only `user_info` texts, which the
//! protocol parsers produced as compact JSON, are embedded raw.

use crate::codes::{CloseCode, ErrorCode};
use crate::json::{push_quoted, quote};
use bytes::Bytes;

fn finish(out: String) -> Bytes {
    Bytes::from(out)
}

/// `{"event":E,"channel":C,"data":"<inner as JSON string>"}`; `channel` omitted when None.
fn frame_with_string_data(event: &str, channel: Option<&str>, inner: &str) -> Bytes {
    let mut out = String::with_capacity(inner.len() * 2 + 64);
    out.push_str("{\"event\":");
    push_quoted(&mut out, event);
    if let Some(ch) = channel {
        out.push_str(",\"channel\":");
        push_quoted(&mut out, ch);
    }
    out.push_str(",\"data\":");
    push_quoted(&mut out, inner);
    out.push('}');
    finish(out)
}

/// `{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":120}"}`
pub fn connection_established(socket_id: &str, activity_timeout: u64) -> Bytes {
    let inner = format!("{{\"socket_id\":{},\"activity_timeout\":{activity_timeout}}}", quote(socket_id));
    frame_with_string_data("pusher:connection_established", None, &inner)
}

/// `{"event":"pusher_internal:subscription_succeeded","channel":C,"data":"{}"}`
pub fn subscription_succeeded(channel: &str) -> Bytes {
    frame_with_string_data("pusher_internal:subscription_succeeded", Some(channel), "{}")
}

/// members: (user_id, user_info compact JSON or None) ;
/// data = "{\"presence\":{\"ids\":[...],\"hash\":{id: info|null},\"count\":n}}"
pub fn presence_subscription_succeeded<'a>(
    channel: &str,
    members: impl ExactSizeIterator<Item = (&'a str, Option<&'a str>)> + Clone,
) -> Bytes {
    let count = members.len();
    let mut inner = String::from("{\"presence\":{\"ids\":[");
    for (i, (id, _)) in members.clone().enumerate() {
        if i > 0 {
            inner.push(',');
        }
        push_quoted(&mut inner, id);
    }
    inner.push_str("],\"hash\":{");
    for (i, (id, info)) in members.enumerate() {
        if i > 0 {
            inner.push(',');
        }
        push_quoted(&mut inner, id);
        inner.push(':');
        inner.push_str(info.unwrap_or("null"));
    }
    inner.push_str("},\"count\":");
    inner.push_str(&count.to_string());
    inner.push_str("}}");
    frame_with_string_data("pusher_internal:subscription_succeeded", Some(channel), &inner)
}

/// `pusher_internal:member_added`; the `user_info` key is omitted when None.
pub fn member_added(channel: &str, user_id: &str, user_info: Option<&str>) -> Bytes {
    let mut inner = String::from("{\"user_id\":");
    push_quoted(&mut inner, user_id);
    if let Some(info) = user_info {
        inner.push_str(",\"user_info\":");
        inner.push_str(info);
    }
    inner.push('}');
    frame_with_string_data("pusher_internal:member_added", Some(channel), &inner)
}

/// `pusher_internal:member_removed` with data `"{\"user_id\":\"…\"}"`.
pub fn member_removed(channel: &str, user_id: &str) -> Bytes {
    let inner = format!("{{\"user_id\":{}}}", quote(user_id));
    frame_with_string_data("pusher_internal:member_removed", Some(channel), &inner)
}

/// channel event; `data` is placed as a JSON string value; user_id only when Some.
/// `{"event":..,"channel":..,"data":"..","user_id":".."}`
pub fn channel_event(event: &str, channel: &str, data: &str, user_id: Option<&str>) -> Bytes {
    let mut out = String::with_capacity(data.len() + event.len() + channel.len() + 64);
    out.push_str("{\"event\":");
    push_quoted(&mut out, event);
    out.push_str(",\"channel\":");
    push_quoted(&mut out, channel);
    out.push_str(",\"data\":");
    push_quoted(&mut out, data);
    if let Some(uid) = user_id {
        out.push_str(",\"user_id\":");
        push_quoted(&mut out, uid);
    }
    out.push('}');
    finish(out)
}

/// `{"event":"pusher:error","data":{"code":4301|null,"message":"..."}}` (object data, no
/// channel): an error the connection survives.
pub fn error(code: Option<ErrorCode>, message: &str) -> Bytes {
    error_frame(code.map(ErrorCode::get), message)
}

/// The `pusher:error` sent just before closing with `code` (2.2): the same shape as
/// [`error`], carrying the close code.
pub fn closing_error(code: CloseCode, message: &str) -> Bytes {
    error_frame(Some(code.get()), message)
}

fn error_frame(code: Option<u16>, message: &str) -> Bytes {
    let code = code.map_or_else(|| "null".to_owned(), |c| c.to_string());
    finish(format!("{{\"event\":\"pusher:error\",\"data\":{{\"code\":{code},\"message\":{}}}}}", quote(message)))
}

/// `{"event":"pusher:pong","data":"{}"}`
pub fn pong() -> Bytes {
    Bytes::from_static(b"{\"event\":\"pusher:pong\",\"data\":\"{}\"}")
}

/// `{"event":"pusher:ping","data":"{}"}`
pub fn ping() -> Bytes {
    Bytes::from_static(b"{\"event\":\"pusher:ping\",\"data\":\"{}\"}")
}

/// `{"event":"pusher:cache_miss","channel":"..."}` (no data).
pub fn cache_miss(channel: &str) -> Bytes {
    finish(format!("{{\"event\":\"pusher:cache_miss\",\"channel\":{}}}", quote(channel)))
}

/// `pusher_internal:subscription_count` with data `"{\"subscription_count\":N}"`.
pub fn subscription_count(channel: &str, count: u64) -> Bytes {
    let inner = format!("{{\"subscription_count\":{count}}}");
    frame_with_string_data("pusher_internal:subscription_count", Some(channel), &inner)
}

/// `{"event":"pusher:signin_success","data":{"user_data":"<string>"}}` — the string the client sent.
pub fn signin_success(user_data: &str) -> Bytes {
    finish(format!("{{\"event\":\"pusher:signin_success\",\"data\":{{\"user_data\":{}}}}}", quote(user_data)))
}

/// `{"event":"pusher_internal:watchlist_events","data":{"events":[{"name":"online","user_ids":[..]},
/// {"name":"offline","user_ids":[..]}]}}`; elements with no ids are omitted.
pub fn watchlist_events(online: &[&str], offline: &[&str]) -> Bytes {
    let mut out = String::from("{\"event\":\"pusher_internal:watchlist_events\",\"data\":{\"events\":[");
    let mut first = true;
    for (name, ids) in [("online", online), ("offline", offline)] {
        if ids.is_empty() {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str("{\"name\":\"");
        out.push_str(name);
        out.push_str("\",\"user_ids\":[");
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_quoted(&mut out, id);
        }
        out.push_str("]}");
    }
    out.push_str("]}}");
    finish(out)
}

/// Optional soketi-style refusal (5.9):
/// `{"event":"pusher:subscription_error","channel":C,"data":{"type":"AuthError","error":E,"status":N}}`
pub fn subscription_error(channel: &str, error: &str, status: u16) -> Bytes {
    finish(format!(
        "{{\"event\":\"pusher:subscription_error\",\"channel\":{},\"data\":{{\"type\":\"AuthError\",\"error\":{},\"status\":{status}}}}}",
        quote(channel),
        quote(error)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn s(b: Bytes) -> String {
        String::from_utf8(b.to_vec()).unwrap()
    }

    fn parsed(b: &Bytes) -> Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn connection_established_exact_string() {
        assert_eq!(
            s(connection_established("208836.27464492", 120)),
            r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"208836.27464492\",\"activity_timeout\":120}"}"#
        );
    }

    #[test]
    fn subscription_succeeded_exact_string() {
        assert_eq!(
            s(subscription_succeeded("private-foobar")),
            r#"{"event":"pusher_internal:subscription_succeeded","channel":"private-foobar","data":"{}"}"#
        );
    }

    #[test]
    fn presence_list_exact_string_from_spec() {
        let members = [("u-1", Some(r#"{"name":"Ada"}"#)), ("u-2", Some(r#"{"name":"Bob"}"#))];
        assert_eq!(
            s(presence_subscription_succeeded("presence-room", members.into_iter())),
            r#"{"event":"pusher_internal:subscription_succeeded","channel":"presence-room","data":"{\"presence\":{\"ids\":[\"u-1\",\"u-2\"],\"hash\":{\"u-1\":{\"name\":\"Ada\"},\"u-2\":{\"name\":\"Bob\"}},\"count\":2}}"}"#
        );
    }

    #[test]
    fn presence_list_with_null_hash_entry() {
        let members = [("u-1", Some(r#"{"name":"Ada"}"#)), ("10", None)];
        let b = presence_subscription_succeeded("presence-room", members.into_iter());
        assert_eq!(
            s(b.clone()),
            r#"{"event":"pusher_internal:subscription_succeeded","channel":"presence-room","data":"{\"presence\":{\"ids\":[\"u-1\",\"10\"],\"hash\":{\"u-1\":{\"name\":\"Ada\"},\"10\":null},\"count\":2}}"}"#
        );
        let inner: Value = serde_json::from_str(parsed(&b)["data"].as_str().unwrap()).unwrap();
        assert_eq!(inner["presence"]["hash"]["10"], Value::Null);
        assert_eq!(inner["presence"]["count"], 2);
    }

    #[test]
    fn empty_presence_list_is_valid() {
        let b = presence_subscription_succeeded("presence-x", std::iter::empty());
        let inner: Value = serde_json::from_str(parsed(&b)["data"].as_str().unwrap()).unwrap();
        assert_eq!(inner, json!({"presence":{"ids":[],"hash":{},"count":0}}));
    }

    #[test]
    fn member_added_with_and_without_info() {
        assert_eq!(
            s(member_added("presence-room", "u-3", Some(r#"{"name":"Cy"}"#))),
            r#"{"event":"pusher_internal:member_added","channel":"presence-room","data":"{\"user_id\":\"u-3\",\"user_info\":{\"name\":\"Cy\"}}"}"#
        );
        assert_eq!(
            s(member_added("presence-room", "u-3", None)),
            r#"{"event":"pusher_internal:member_added","channel":"presence-room","data":"{\"user_id\":\"u-3\"}"}"#
        );
    }

    #[test]
    fn member_removed_exact_string() {
        assert_eq!(
            s(member_removed("presence-room", "u-3")),
            r#"{"event":"pusher_internal:member_removed","channel":"presence-room","data":"{\"user_id\":\"u-3\"}"}"#
        );
    }

    #[test]
    fn client_event_relay_with_user_id() {
        assert_eq!(
            s(channel_event("client-typing", "presence-room", r#"{"typing":true}"#, Some("u-1"))),
            r#"{"event":"client-typing","channel":"presence-room","data":"{\"typing\":true}","user_id":"u-1"}"#
        );
        assert_eq!(
            s(channel_event("price-updated", "cache-btc", r#"{"usd":64000}"#, None)),
            r#"{"event":"price-updated","channel":"cache-btc","data":"{\"usd\":64000}"}"#
        );
    }

    #[test]
    fn hostile_strings_are_escaped() {
        let evil = "a\"},\"x\":\"\\\n\u{2028}";
        let b = channel_event(evil, evil, evil, Some(evil));
        let v = parsed(&b);
        assert_eq!(v["event"], evil);
        assert_eq!(v["channel"], evil);
        assert_eq!(v["data"], evil);
        assert_eq!(v["user_id"], evil);
        assert_eq!(parsed(&error(None, evil))["data"]["message"], evil);
        assert_eq!(parsed(&signin_success(evil))["data"]["user_data"], evil);
        assert_eq!(parsed(&cache_miss(evil))["channel"], evil);
        let inner = parsed(&member_removed(evil, evil))["data"].as_str().unwrap().to_owned();
        assert_eq!(serde_json::from_str::<Value>(&inner).unwrap()["user_id"], evil);
    }

    #[test]
    fn error_with_null_code() {
        assert_eq!(
            s(error(None, "Unsupported event: foo")),
            r#"{"event":"pusher:error","data":{"code":null,"message":"Unsupported event: foo"}}"#
        );
    }

    #[test]
    fn error_with_4301_code() {
        assert_eq!(
            s(error(Some(ErrorCode::CLIENT_EVENT_RATE_LIMIT), "Client event rate limit exceeded (10 per second)")),
            r#"{"event":"pusher:error","data":{"code":4301,"message":"Client event rate limit exceeded (10 per second)"}}"#
        );
    }

    #[test]
    fn closing_error_carries_the_close_code() {
        assert_eq!(
            s(closing_error(CloseCode::RECONNECT, "Server is shutting down; reconnect")),
            r#"{"event":"pusher:error","data":{"code":4200,"message":"Server is shutting down; reconnect"}}"#
        );
    }

    #[test]
    fn pong_and_ping_exact_strings() {
        assert_eq!(s(pong()), r#"{"event":"pusher:pong","data":"{}"}"#);
        assert_eq!(s(ping()), r#"{"event":"pusher:ping","data":"{}"}"#);
    }

    #[test]
    fn cache_miss_and_subscription_count_exact_strings() {
        assert_eq!(s(cache_miss("cache-btc")), r#"{"event":"pusher:cache_miss","channel":"cache-btc"}"#);
        assert_eq!(
            s(subscription_count("my-channel", 3)),
            r#"{"event":"pusher_internal:subscription_count","channel":"my-channel","data":"{\"subscription_count\":3}"}"#
        );
    }

    #[test]
    fn signin_success_echoes_user_data_string() {
        let ud = r#"{"id":"u-1","user_info":{"name":"Ada"},"watchlist":["u-2","u-3"]}"#;
        assert_eq!(
            s(signin_success(ud)),
            r#"{"event":"pusher:signin_success","data":{"user_data":"{\"id\":\"u-1\",\"user_info\":{\"name\":\"Ada\"},\"watchlist\":[\"u-2\",\"u-3\"]}"}}"#
        );
    }

    #[test]
    fn watchlist_events_omit_empty_elements() {
        assert_eq!(
            s(watchlist_events(&["u-2"], &["u-3"])),
            r#"{"event":"pusher_internal:watchlist_events","data":{"events":[{"name":"online","user_ids":["u-2"]},{"name":"offline","user_ids":["u-3"]}]}}"#
        );
        assert_eq!(
            s(watchlist_events(&[], &["u-3", "u-4"])),
            r#"{"event":"pusher_internal:watchlist_events","data":{"events":[{"name":"offline","user_ids":["u-3","u-4"]}]}}"#
        );
        assert_eq!(
            s(watchlist_events(&[], &[])),
            r#"{"event":"pusher_internal:watchlist_events","data":{"events":[]}}"#
        );
    }

    #[test]
    fn subscription_error_extension_shape() {
        assert_eq!(
            s(subscription_error("private-foobar", "Invalid signature", 401)),
            r#"{"event":"pusher:subscription_error","channel":"private-foobar","data":{"type":"AuthError","error":"Invalid signature","status":401}}"#
        );
    }
}
