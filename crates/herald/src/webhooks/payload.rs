//! The bytes on the wire: webhook event objects and the request body (PROTOCOL.md 11.2, 11.4).
//!
//! Owns [`EventObject`] (one entry of `events`, fields in the order the spec shows them,
//! absent fields omitted), [`Body`] (`{"time_ms": …, "events": […]}`) and [`signature`], the
//! hex HMAC-SHA256 of the exact body bytes with the app secret.

use herald_core::events::ChannelEvent;
use serde::{Deserialize, Serialize};

/// One webhook event object. `data` and `user_id` are strings (pusher-http-go decodes them as
/// such); `subscription_count` is an integer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct EventObject {
    pub name: String,
    pub channel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_count: Option<u64>,
}

impl EventObject {
    /// An event with only `name` and `channel`.
    pub(super) fn simple(name: &str, channel: &str) -> Self {
        EventObject {
            name: name.to_owned(),
            channel: channel.to_owned(),
            event: None,
            data: None,
            socket_id: None,
            user_id: None,
            subscription_count: None,
        }
    }
}

impl From<&ChannelEvent> for EventObject {
    fn from(e: &ChannelEvent) -> Self {
        let mut o = EventObject::simple(e.name(), e.channel());
        match e {
            ChannelEvent::MemberAdded { user_id, .. } | ChannelEvent::MemberRemoved { user_id, .. } => {
                o.user_id = Some(user_id.to_string());
            }
            ChannelEvent::ClientEvent { event, data, socket_id, user_id, .. } => {
                o.event = Some(event.to_string());
                o.data = Some(data.to_string());
                o.socket_id = Some(socket_id.to_string());
                o.user_id = user_id.as_ref().map(|u| u.to_string());
            }
            ChannelEvent::SubscriptionCount { count, .. } => o.subscription_count = Some(*count),
            ChannelEvent::Occupied { .. } | ChannelEvent::Vacated { .. } | ChannelEvent::CacheMiss { .. } => {}
        }
        o
    }
}

/// The request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Body {
    /// Unix milliseconds when the batch was created (kept across retries).
    pub time_ms: u64,
    pub events: Vec<EventObject>,
}

impl Body {
    pub(super) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("webhook bodies always serialize")
    }
}

/// `X-Pusher-Signature`: hex HMAC-SHA256(secret, body).
pub(super) fn signature(secret: &str, body: &[u8]) -> String {
    herald_protocol::auth::hmac_sha256_hex(secret.as_bytes(), body)
}

/// Now, in Unix milliseconds.
pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_matches_spec_vector_k() {
        let body = Body {
            time_ms: 1_700_000_000_123,
            events: vec![(&ChannelEvent::MemberAdded { channel: "presence-room".into(), user_id: "u-1".into() }).into()],
        };
        let json = body.to_json();
        assert_eq!(
            json,
            r#"{"time_ms":1700000000123,"events":[{"name":"member_added","channel":"presence-room","user_id":"u-1"}]}"#
        );
        assert_eq!(
            signature("7ad3773142a6692b25b8", json.as_bytes()),
            "b907f68ec32242ac28a02b9168e533e115897219429d305074f1e78ffecf69c8"
        );
    }

    #[test]
    fn client_event_and_count_objects() {
        let ce = ChannelEvent::ClientEvent {
            channel: "presence-room".into(),
            event: "client-typing".into(),
            data: "{\"typing\":true}".into(),
            socket_id: "123456.7890123".into(),
            user_id: Some("u-1".into()),
        };
        assert_eq!(
            serde_json::to_string(&EventObject::from(&ce)).unwrap(),
            r#"{"name":"client_event","channel":"presence-room","event":"client-typing","data":"{\"typing\":true}","socket_id":"123456.7890123","user_id":"u-1"}"#
        );
        let sc = ChannelEvent::SubscriptionCount { channel: "my-channel".into(), count: 3 };
        assert_eq!(
            serde_json::to_string(&EventObject::from(&sc)).unwrap(),
            r#"{"name":"subscription_count","channel":"my-channel","subscription_count":3}"#
        );
    }
}
