//! Cache channels (PROTOCOL.md 9.1): the last HTTP publish is kept until it expires, sent to
//! each new subscriber (`pusher:cache_miss` when there is none), and keeps an otherwise empty
//! channel alive until then.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::channel::{ChannelState, Subscriber};

const NEWS: &str = "cache-news";
const TTL: Duration = Duration::from_secs(60);

#[test]
fn a_live_cache_is_sent_to_a_new_subscriber_right_after_subscription_succeeded() {
    let (ns, sink) = namespace();
    assert_eq!(publish_cached(&ns, NEWS, "update", r#"{"v":1}"#, TTL), 0);
    let a = conn(1);
    subscribe(&ns, &a, NEWS, NO_COUNTS);
    let frames = take(&a);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].event, SUCCEEDED);
    assert_eq!((frames[1].event.as_str(), frames[1].channel.as_deref()), ("update", Some(NEWS)));
    assert_eq!(frames[1].data, json!({ "v": 1 }));
    assert!(!sink.take().contains(&ev_cache_miss(NEWS)));
}

#[test]
fn a_cache_channel_with_nothing_cached_answers_cache_miss_and_reports_it() {
    let (ns, sink) = namespace();
    let a = conn(1);
    subscribe(&ns, &a, NEWS, NO_COUNTS);
    let frames = take(&a);
    assert_eq!(frames.iter().map(|f| f.event.as_str()).collect::<Vec<_>>(), [SUCCEEDED, CACHE_MISS]);
    assert_eq!(frames[1].channel.as_deref(), Some(NEWS));
    assert_eq!(sink.take(), [ev_occupied(NEWS), ev_cache_miss(NEWS)]);
}

#[test]
fn an_expired_cache_answers_cache_miss() {
    let (ns, _) = namespace();
    publish_cached(&ns, NEWS, "update", "1", Duration::ZERO);
    let a = conn(1);
    subscribe(&ns, &a, NEWS, NO_COUNTS);
    assert_eq!(take_events(&a), [SUCCEEDED, CACHE_MISS]);
}

#[test]
fn the_cached_event_comes_between_subscription_succeeded_and_the_count() {
    let (ns, _) = namespace();
    publish_cached(&ns, NEWS, "update", "1", TTL);
    let a = conn(1);
    subscribe(&ns, &a, NEWS, counts_on(10, Duration::from_secs(5)));
    assert_eq!(take_events(&a), [SUCCEEDED, "update", COUNT]);
}

#[test]
fn cached_returns_the_live_cache_with_its_remaining_seconds_and_nothing_once_expired() {
    let (ns, _) = namespace();
    publish_cached(&ns, NEWS, "update", "1", TTL);
    let (event, data, secs) = cached(&ns, NEWS).expect("live");
    assert_eq!((event.as_str(), data.as_str()), ("update", "1"));
    assert!((59..=60).contains(&secs), "{secs}");
    publish_cached(&ns, NEWS, "update", "2", Duration::ZERO);
    assert_eq!(cached(&ns, NEWS), None);
    assert_eq!(cached(&ns, "cache-unknown"), None);
}

#[test]
fn a_cached_publish_reaches_current_subscribers_and_replaces_the_cache() {
    let (ns, _) = namespace();
    let a = conn(1);
    subscribe(&ns, &a, NEWS, NO_COUNTS);
    take(&a);
    assert_eq!(publish_cached(&ns, NEWS, "update", "1", TTL), 1);
    assert_eq!(publish_cached(&ns, NEWS, "update", "2", TTL), 1);
    assert_eq!(take(&a).iter().map(|f| f.data.clone()).collect::<Vec<_>>(), [json!(1), json!(2)]);
    let b = conn(2);
    subscribe(&ns, &b, NEWS, NO_COUNTS);
    assert_eq!(take(&b)[1].data, json!(2));
}

#[test]
fn an_empty_channel_is_removable_only_once_its_cache_expired() {
    let t0 = Instant::now();
    let mut st = ChannelState::default();
    assert!(st.is_removable(t0));
    st.cache = Some(cached_event("update", "1", t0 + Duration::from_secs(10)));
    assert!(st.live_cache(t0 + Duration::from_secs(9)).is_some());
    assert!(!st.is_removable(t0 + Duration::from_secs(9)));
    assert!(st.live_cache(t0 + Duration::from_secs(10)).is_none(), "expired at its expiry instant");
    assert!(st.is_removable(t0 + Duration::from_secs(10)));
}

#[test]
fn a_channel_with_subscribers_or_cluster_interest_is_never_removable() {
    let t0 = Instant::now();
    let mut st = ChannelState::default();
    st.subscribers.insert(1, Subscriber { conn: conn(1), user_id: None });
    assert!(!st.is_removable(t0));
    let mut st = ChannelState { remote_interest: true, ..ChannelState::default() };
    assert!(!st.is_removable(t0));
    st.remote_interest = false;
    assert!(st.is_removable(t0));
}

#[test]
fn the_sweep_keeps_an_empty_cache_channel_until_its_cache_expires() {
    let (ns, _) = namespace();
    publish_cached(&ns, NEWS, "update", "1", TTL);
    ns.sweep();
    assert!(ns.has_channel(NEWS));
    set_cache(&ns, NEWS, cached_event("update", "1", Instant::now()));
    ns.sweep();
    assert!(!ns.has_channel(NEWS));
}

#[test]
fn the_sweep_never_drops_a_channel_with_subscribers() {
    let (ns, _) = namespace();
    let (a, b) = (conn(1), conn(2));
    subscribe(&ns, &a, NEWS, NO_COUNTS);
    subscribe(&ns, &b, "chat", NO_COUNTS);
    publish_cached(&ns, NEWS, "update", "1", Duration::ZERO);
    ns.sweep();
    assert!(ns.has_channel(NEWS));
    assert!(ns.has_channel("chat"));
}

#[test]
fn the_last_subscriber_leaving_keeps_a_channel_whose_cache_is_live() {
    let (ns, _) = namespace();
    let a = conn(1);
    subscribe(&ns, &a, NEWS, NO_COUNTS);
    publish_cached(&ns, NEWS, "update", "1", TTL);
    assert!(leave(&ns, &a, NEWS).expect("subscribed").vacated);
    assert!(ns.has_channel(NEWS));
    assert!(ns.occupied("").is_empty(), "kept for its cache, but not occupied");
    let b = conn(2);
    subscribe(&ns, &b, NEWS, NO_COUNTS);
    assert_eq!(take_events(&b), [SUCCEEDED, "update"]);
}

#[test]
fn the_last_subscriber_leaving_drops_a_channel_whose_cache_expired() {
    let (ns, _) = namespace();
    let a = conn(1);
    subscribe(&ns, &a, NEWS, NO_COUNTS);
    publish_cached(&ns, NEWS, "update", "1", Duration::ZERO);
    leave(&ns, &a, NEWS);
    assert!(!ns.has_channel(NEWS));
}

#[test]
fn channels_that_are_not_cache_channels_never_answer_cache_miss() {
    let (ns, sink) = namespace();
    for (seq, name) in [(1, "chat"), (2, "private-chat"), (3, "presence-chat")] {
        let c = conn(seq);
        if name.starts_with("presence-") {
            join(&ns, &c, name, "alice");
        } else {
            subscribe(&ns, &c, name, NO_COUNTS);
        }
        assert_eq!(take_events(&c), [SUCCEEDED], "{name}");
    }
    let events = sink.take();
    for name in ["chat", "private-chat", "presence-chat"] {
        assert!(!events.contains(&ev_cache_miss(name)), "{name}");
    }
}
