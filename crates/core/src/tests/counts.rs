//! `pusher_internal:subscription_count` (PROTOCOL.md 9.2): every change is announced up to the
//! threshold; above it at most once per interval, the latest count winning.
//!
//! The throttle is driven with explicit instants (`Channel::count_changed_at`); only the
//! delayed, coalesced update needs a runtime, whose clock is paused so nothing sleeps.

use std::time::{Duration, Instant};

use herald_protocol::channel::ChannelKind;

use super::*;
use crate::channel::{Channel, Subscriber};

const CHAT: &str = "chat";
const INTERVAL: Duration = Duration::from_secs(5);

/// A channel with `subscribers` local subscribers (connections 1..=n).
fn channel_with(name: &str, subscribers: u64) -> (Arc<Channel>, Vec<Arc<Connection>>) {
    let ch = Arc::new(Channel::new(Arc::from(name), ChannelKind::of(name)));
    let conns: Vec<_> = (1..=subscribers).map(conn).collect();
    for c in &conns {
        add_subscriber(&ch, c);
    }
    (ch, conns)
}

fn add_subscriber(ch: &Channel, c: &Arc<Connection>) {
    ch.state.write().subscribers.insert(c.socket_id.seq, Subscriber { conn: c.clone(), user_id: None });
}

/// Reports a change of the subscriber set at `at`.
fn changed_at(ch: &Arc<Channel>, policy: CountPolicy, events: &Events, at: Instant) {
    let mut st = ch.state.write();
    ch.count_changed_at(&mut st, policy, events, &metrics(), at);
}

#[test]
fn no_count_is_sent_when_the_app_disables_counts() {
    let (ns, sink) = namespace();
    let (a, b) = (conn(1), conn(2));
    subscribe(&ns, &a, CHAT, NO_COUNTS);
    subscribe(&ns, &b, CHAT, NO_COUNTS);
    ns.unsubscribe(&b, CHAT, NO_COUNTS, &metrics());
    assert!(count_frames(&take(&a)).is_empty());
    assert!(reported_counts(&sink.take()).is_empty());
}

#[test]
fn under_the_threshold_every_subscribe_and_unsubscribe_sends_the_new_count_to_everyone() {
    let (ns, sink) = namespace();
    let policy = counts_on(10, INTERVAL);
    let (a, b, c) = (conn(1), conn(2), conn(3));
    subscribe(&ns, &a, CHAT, policy);
    subscribe(&ns, &b, CHAT, policy);
    subscribe(&ns, &c, CHAT, policy);
    assert_eq!(count_frames(&take(&a)), [1, 2, 3]);
    assert_eq!(count_frames(&take(&b)), [2, 3]);
    assert_eq!(count_frames(&take(&c)), [3]);
    ns.unsubscribe(&c, CHAT, policy, &metrics());
    assert_eq!(count_frames(&take(&b)), [2]);
    ns.unsubscribe(&b, CHAT, policy, &metrics());
    assert_eq!(count_frames(&take(&a)), [2, 1]);
    assert!(take(&b).is_empty() && take(&c).is_empty(), "a connection that left hears nothing more");
    ns.unsubscribe(&a, CHAT, policy, &metrics());
    assert!(take(&a).is_empty());
    assert_eq!(reported_counts(&sink.take()), [1, 2, 3, 2, 1]);
}

#[test]
fn the_count_follows_subscription_succeeded() {
    let (ns, _) = namespace();
    let a = conn(1);
    subscribe(&ns, &a, CHAT, counts_on(10, INTERVAL));
    assert_eq!(take_events(&a), [SUCCEEDED, COUNT]);
}

#[test]
fn above_the_threshold_changes_within_the_interval_are_held_back() {
    let (ch, conns) = channel_with(CHAT, 2);
    let policy = counts_on(2, INTERVAL);
    let events = Events::none();
    let t0 = Instant::now();
    changed_at(&ch, policy, &events, t0);
    assert_eq!(count_frames(&take(&conns[0])), [2]);
    add_subscriber(&ch, &conn(3));
    changed_at(&ch, policy, &events, t0 + Duration::from_secs(1));
    add_subscriber(&ch, &conn(4));
    changed_at(&ch, policy, &events, t0 + INTERVAL - Duration::from_millis(1));
    assert!(take(&conns[0]).is_empty());
}

#[test]
fn above_the_threshold_the_first_change_after_the_interval_is_sent_at_once() {
    let (ch, conns) = channel_with(CHAT, 3);
    let policy = counts_on(2, INTERVAL);
    let events = Events::none();
    let t0 = Instant::now();
    changed_at(&ch, policy, &events, t0);
    add_subscriber(&ch, &conn(4));
    changed_at(&ch, policy, &events, t0 + Duration::from_secs(1));
    add_subscriber(&ch, &conn(5));
    changed_at(&ch, policy, &events, t0 + INTERVAL);
    add_subscriber(&ch, &conn(6));
    changed_at(&ch, policy, &events, t0 + INTERVAL + Duration::from_secs(1));
    changed_at(&ch, policy, &events, t0 + INTERVAL * 2);
    assert_eq!(count_frames(&take(&conns[0])), [3, 5, 6], "one update per interval, with the count of its time");
}

#[test]
fn falling_back_under_the_threshold_is_announced_at_once() {
    let (ch, conns) = channel_with(CHAT, 3);
    let policy = counts_on(2, INTERVAL);
    let events = Events::none();
    let t0 = Instant::now();
    changed_at(&ch, policy, &events, t0);
    ch.state.write().subscribers.remove(&3);
    changed_at(&ch, policy, &events, t0 + Duration::from_millis(10));
    assert_eq!(count_frames(&take(&conns[0])), [3, 2]);
}

#[test]
fn remote_subscriptions_count_towards_the_threshold() {
    let (ch, conns) = channel_with(CHAT, 1);
    ch.state.write().remote_counts.insert(7, 5);
    let policy = counts_on(3, INTERVAL);
    let events = Events::none();
    let t0 = Instant::now();
    changed_at(&ch, policy, &events, t0);
    changed_at(&ch, policy, &events, t0 + Duration::from_secs(1));
    assert_eq!(count_frames(&take(&conns[0])), [6], "6 subscriptions in the cluster are over the threshold of 3");
}

#[test]
fn above_the_threshold_one_coalesced_update_with_the_latest_count_follows_the_interval() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("runtime");
    let _in_runtime = rt.enter();
    let sink = recording_sink();
    let events = events_to(&sink);
    let (ch, conns) = channel_with(CHAT, 3);
    let policy = counts_on(2, INTERVAL);
    let t0 = Instant::now();
    changed_at(&ch, policy, &events, t0);
    for seq in 4..=5 {
        add_subscriber(&ch, &conn(seq));
        changed_at(&ch, policy, &events, Instant::now());
    }
    assert_eq!(count_frames(&take(&conns[0])), [3]);
    // The paused clock jumps to the timer instead of waiting for it.
    rt.block_on(tokio::time::sleep(INTERVAL * 2));
    assert_eq!(count_frames(&take(&conns[0])), [5]);
    assert_eq!(reported_counts(&sink.take()), [3, 5]);
}

#[test]
fn presence_and_server_to_user_channels_never_get_counts() {
    for name in ["presence-room", "#server-to-user-alice"] {
        let (ch, conns) = channel_with(name, 2);
        changed_at(&ch, counts_on(10, INTERVAL), &Events::none(), Instant::now());
        assert!(take(&conns[0]).is_empty(), "{name}");
    }
}

#[test]
fn a_channel_left_empty_announces_no_count() {
    let (ch, conns) = channel_with(CHAT, 1);
    ch.state.write().subscribers.clear();
    ch.state.write().remote_counts.insert(7, 3);
    changed_at(&ch, counts_on(10, INTERVAL), &Events::none(), Instant::now());
    assert!(take(&conns[0]).is_empty());
}
