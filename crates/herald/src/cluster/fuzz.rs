//! The `cluster_wire` fuzz target (see `crate::fuzzing`): bytes received from Redis, decoded as
//! `wire.rs` decodes them: a channel message (JSON header, `\n`, frame), a control message, a
//! cached event's Redis value, a pub/sub channel name.
//!
//! Invariants: whatever decodes re-encodes to something that decodes to the same message and
//! frame (a cached event's lifetime may only shrink by the time spent in between); a cache
//! value and a channel name round-trip through their encoders.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::wire::{cache_from_value, cache_value, decode, encode, ChannelMsg, ControlMsg, Names};

/// Runs one input, as each of the four things a node reads from Redis.
pub fn cluster_wire(data: &[u8]) {
    channel_message(data);
    control_message(data);
    if let Ok(text) = std::str::from_utf8(data) {
        cache_entry(text);
        channel_name(text);
    }
}

fn channel_message(data: &[u8]) {
    let raw = Bytes::copy_from_slice(data);
    let Some((msg, frame)) = decode(&raw) else { return };
    let t0 = Instant::now();
    let (again, frame_again) = decode(&encode(&msg, Some(&frame))).expect("a re-encoded message decodes");
    let t1 = Instant::now();
    assert_eq!(frame_again, frame);
    assert_eq!(again.node(), msg.node());
    match (&msg, &again) {
        (ChannelMsg::Event { n, x, c }, ChannelMsg::Event { n: n2, x: x2, c: c2 }) => {
            assert_eq!((n, x), (n2, x2));
            match (c, c2) {
                (None, None) => {}
                (Some(a), Some(b)) => {
                    assert_eq!((&a.event, &a.data), (&b.event, &b.data));
                    // The lifetime travels in whole ms, measured at encoding and counted again
                    // from decoding: the copy expires at most the time in between later, at
                    // most 1 ms (rounding) earlier.
                    assert!(b.expires <= a.expires + (t1 - t0), "{a:?} → {b:?}");
                    assert!(b.expires + Duration::from_millis(1) >= a.expires, "{a:?} → {b:?}");
                }
                (a, b) => panic!("cache entry {a:?} became {b:?}"),
            }
        }
        (a, b) => assert_eq!(a, b),
    }
}

fn control_message(data: &[u8]) {
    let Ok(msg) = serde_json::from_slice::<ControlMsg>(data) else { return };
    let bytes = serde_json::to_vec(&msg).expect("control messages serialize");
    assert_eq!(serde_json::from_slice::<ControlMsg>(&bytes).ok(), Some(msg));
}

fn cache_entry(text: &str) {
    let pttl = i64::try_from(text.len()).unwrap_or(0) * 1000 - 1;
    let Some(cached) = cache_from_value(text, pttl) else {
        assert!(!text.contains('\0'), "a value with a separator decodes");
        return;
    };
    let (value, px) = cache_value(&cached);
    assert_eq!(value, text, "the value round-trips");
    assert!(px >= 1 && px <= pttl.max(1), "expiry {px} from a PTTL of {pttl}");
}

fn channel_name(text: &str) {
    let names = Names::new("herald");
    if let Some((app, channel)) = names.parse_channel(text) {
        assert_eq!(names.channel(app, channel), text);
    }
    let (app, channel) = text.split_once('/').unwrap_or(("app-1", text));
    if !app.contains(':') {
        let name = names.channel(app, channel);
        assert_eq!(names.parse_channel(&name), Some((app, channel)));
    }
}
