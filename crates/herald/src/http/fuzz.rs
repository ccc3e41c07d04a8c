//! The publish-body half of the `api_auth` fuzz target (see `crate::fuzzing`): a body that
//! passed the signature check, through the same parsing and validation as `POST /events` /
//! `POST /batch_events` (PROTOCOL.md 10.3, 10.4), under the default app limits.
//!
//! Invariants: an accepted event has a valid name, 1..=max valid channel names (an encrypted
//! one only alone), data within the payload limit, and a batch within the batch limit.

use herald_core::app::{App, AppLimits};
use herald_protocol::channel::{validate_channel_name, ChannelKind};
use herald_protocol::event::validate_event_name;

use super::events::{parse_batch, parse_trigger, Event};

/// Validates `body` as a single event, or as a batch when `batch`.
pub(crate) fn trigger_body(body: &[u8], batch: bool) {
    let app = App { id: "app-1".into(), key: "key".into(), secret: "secret".into(), limits: AppLimits::default() };
    let l = &app.limits;
    if batch {
        if let Ok(events) = parse_batch(&app, body) {
            assert!(!events.is_empty() && events.len() <= l.max_event_batch_size);
            for e in &events {
                assert_eq!(e.channels.len(), 1, "batch events name one channel");
                check(&app, e);
            }
        }
    } else if let Ok(event) = parse_trigger(&app, body) {
        check(&app, &event);
    }
}

fn check(app: &App, e: &Event) {
    let l = &app.limits;
    assert!(validate_event_name(&e.name, l.max_event_name_length).is_ok(), "{:?}", e.name);
    assert!(e.data.len() <= l.max_payload_bytes());
    assert!(!e.channels.is_empty() && e.channels.len() <= l.max_event_channels_at_once);
    for ch in &e.channels {
        let kind = validate_channel_name(ch, l.max_channel_name_length);
        assert!(kind.is_ok(), "{ch:?}");
        if kind.is_ok_and(ChannelKind::is_encrypted) {
            assert_eq!(e.channels.len(), 1, "an encrypted channel is published to alone");
        }
    }
}
