//! The `webhook_payload` fuzz target (see `crate::fuzzing`): channel events, as the hub emits
//! them, through the dispatcher's pure stages (removal debouncing, per-target type and channel
//! filters, batching) into signed request bodies (PROTOCOL.md 11.2–11.4).
//!
//! Invariants: with no removal delay the debouncer changes nothing, and with one it only drops
//! or delays events (pass-through kinds keep their order); a target gets exactly the events
//! its filter accepts, in order, in batches of 1..=max; every body is JSON that decodes to the
//! same events, with the fields its event type defines, and its signature verifies.

use std::time::{Duration, Instant};

use herald_core::events::{ChannelEvent, EventKind, EventKinds};
use herald_protocol::auth::verify_hex_signature;
use serde_json::Value;

use super::batch::Batcher;
use super::config::{ChannelFilter, WebhookTarget};
use super::debounce::Debouncer;
use super::payload::{signature, Body, EventObject};
use crate::fuzzing::input::Input;

const SECRET: &str = "7ad3773142a6692b25b8";

/// Runs one input: removal delay (ms), batch max, two targets (event-type bits, channel prefix,
/// channel suffix), a body timestamp field, then events (kind byte, time step byte, fields).
pub fn webhook_payload(data: &[u8]) {
    let mut input = Input::new(data);
    let delay = Duration::from_millis(u64::from(input.byte()) * 10);
    let max = usize::from(input.byte() % 8);
    let targets: Vec<WebhookTarget> = (0..2).map(|_| target(&mut input)).collect();
    let time_ms = input.field().parse::<u64>().unwrap_or(0);

    let start = Instant::now();
    let mut now = start;
    let mut sent = Vec::new();
    let mut debounced = Vec::new();
    let mut debouncer = Debouncer::new(delay);
    while !input.is_empty() {
        let op = input.byte();
        now += Duration::from_millis(u64::from(input.byte()) * 10);
        let event = event(op, &mut input);
        sent.push(event.clone());
        debounced.extend(debouncer.due(now).into_iter().map(|(_, e)| e));
        debounced.extend(debouncer.on_event(&0, event, now));
    }
    debounced.extend(debouncer.due(now + delay).into_iter().map(|(_, e)| e));
    assert!(debouncer.drain().is_empty(), "every removal is due after the delay");
    check_debounced(&sent, &debounced, delay.is_zero());

    // Route and batch as the dispatcher does, keeping what each target should get.
    let mut batcher = Batcher::new(Duration::from_secs(1), max);
    let mut batches: Vec<(usize, Vec<EventObject>)> = Vec::new();
    let mut expected: [Vec<EventObject>; 2] = Default::default();
    for ev in &debounced {
        for (t, target) in targets.iter().enumerate() {
            let accepts = target.event_types.contains(ev.kind()) && target.filter.matches(ev.channel());
            assert_eq!(target.accepts(ev.kind(), ev.channel()), accepts);
            if accepts {
                let object = EventObject::from(ev);
                expected[t].push(object.clone());
                batches.extend(batcher.push(t, object, start));
            }
        }
    }
    batches.extend(batcher.drain());
    for (t, want) in expected.iter().enumerate() {
        let got: Vec<EventObject> =
            batches.iter().filter(|(bt, _)| *bt == t).flat_map(|(_, b)| b.iter().cloned()).collect();
        assert_eq!(&got, want, "target {t} got other events than it accepts");
    }
    for (_, events) in batches {
        assert!(!events.is_empty() && events.len() <= max.max(1));
        check_body(Body { time_ms, events });
    }
}

fn target(input: &mut Input<'_>) -> WebhookTarget {
    let bits = input.byte();
    let event_types: EventKinds = EventKind::ALL.into_iter().filter(|k| bits & (1 << *k as u8) != 0).collect();
    let field = |s: String| Some(s).filter(|s| !s.is_empty());
    let filter = ChannelFilter { starts_with: field(input.field()), ends_with: field(input.field()) };
    WebhookTarget { url: "http://127.0.0.1/".into(), event_types, filter, headers: Vec::new() }
}

fn event(op: u8, input: &mut Input<'_>) -> ChannelEvent {
    let channel = input.field().into();
    match op % 7 {
        0 => ChannelEvent::Occupied { channel },
        1 => ChannelEvent::Vacated { channel },
        2 => ChannelEvent::MemberAdded { channel, user_id: input.field().into() },
        3 => ChannelEvent::MemberRemoved { channel, user_id: input.field().into() },
        4 => ChannelEvent::ClientEvent {
            channel,
            event: input.field().into(),
            data: input.field().into(),
            socket_id: input.field().into(),
            user_id: Some(input.field()).filter(|u| !u.is_empty()).map(Into::into),
        },
        5 => ChannelEvent::CacheMiss { channel },
        _ => ChannelEvent::SubscriptionCount { channel, count: input.field().parse().unwrap_or(u64::MAX) },
    }
}

fn check_debounced(sent: &[ChannelEvent], out: &[ChannelEvent], no_delay: bool) {
    if no_delay {
        assert_eq!(out, sent);
        return;
    }
    assert!(out.len() <= sent.len());
    for e in out {
        assert!(sent.contains(e), "{e:?} was never sent");
    }
    let passes = |e: &&ChannelEvent| {
        matches!(
            e,
            ChannelEvent::ClientEvent { .. } | ChannelEvent::CacheMiss { .. } | ChannelEvent::SubscriptionCount { .. }
        )
    };
    assert!(sent.iter().filter(passes).eq(out.iter().filter(passes)), "pass-through events changed");
}

fn check_body(body: Body) {
    let json = body.to_json();
    let back: Body = serde_json::from_str(&json).expect("a body decodes");
    assert_eq!(back, body);
    let v: Value = serde_json::from_str(&json).expect("a body is JSON");
    assert_eq!(v["time_ms"].as_u64(), Some(body.time_ms));
    for (o, e) in v["events"].as_array().expect("events array").iter().zip(&body.events) {
        let kind = EventKind::parse(o["name"].as_str().expect("name")).expect("a known event type");
        assert_eq!(o["channel"].as_str(), Some(e.channel.as_str()));
        let has = |f: &str| o.get(f).is_some();
        match kind {
            EventKind::MemberAdded | EventKind::MemberRemoved => assert!(has("user_id")),
            EventKind::ClientEvent => assert!(has("event") && has("data") && has("socket_id")),
            EventKind::SubscriptionCount => assert!(o["subscription_count"].is_u64()),
            _ => assert!(!has("user_id") && !has("data") && !has("subscription_count")),
        }
    }
    let sig = signature(SECRET, json.as_bytes());
    assert!(verify_hex_signature(SECRET.as_bytes(), json.as_bytes(), &sig));
}
