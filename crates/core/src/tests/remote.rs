//! What other nodes report (`Namespace::apply_remote`): snapshots merged or replacing, remote
//! members and counts, cached events, and dropping interest in a channel.

use std::time::{Duration, Instant};

use super::*;

const CH: &str = "presence-room";
const CHAT: &str = "chat";

/// Counts on and never throttled within these tests.
fn counts() -> CountPolicy {
    counts_on(1000, Duration::from_secs(60))
}

fn apply_counted(ns: &Namespace, channel: &str, update: RemoteUpdate) -> bool {
    ns.apply_remote(channel, update, counts(), &metrics())
}

/// A namespace with one local observer on the presence channel (its frames taken).
fn watched_room() -> (Namespace, Arc<Connection>) {
    let (ns, _) = namespace();
    let observer = conn(100);
    join(&ns, &observer, CH, "observer");
    take(&observer);
    (ns, observer)
}

fn members(ns: &Namespace) -> Vec<String> {
    ns.user_ids(CH).iter().map(|u| u.to_string()).collect()
}

fn added(user: &str) -> (&'static str, String) {
    ("added", user.to_owned())
}

fn removed(user: &str) -> (&'static str, String) {
    ("removed", user.to_owned())
}

#[test]
fn a_merged_snapshot_announces_the_remote_members_new_to_local_subscribers() {
    let (ns, observer) = watched_room();
    assert!(apply(&ns, CH, snapshot(&[(7, "alice"), (8, "bob"), (8, "observer")], &[], false)));
    let mut got = member_frames(&take(&observer));
    got.sort();
    assert_eq!(got, [added("alice"), added("bob")], "observer is already present here");
    assert_eq!(members(&ns), ["alice", "bob", "observer"]);
}

#[test]
fn a_merged_snapshot_keeps_remote_members_it_does_not_mention() {
    let (ns, observer) = watched_room();
    apply(&ns, CH, remote_joined(7, "carol", None));
    take(&observer);
    apply(&ns, CH, snapshot(&[(8, "alice")], &[], false));
    assert_eq!(member_frames(&take(&observer)), [added("alice")]);
    assert_eq!(members(&ns), ["alice", "carol", "observer"]);
}

#[test]
fn a_snapshot_repeating_known_members_announces_nothing() {
    let (ns, observer) = watched_room();
    apply(&ns, CH, snapshot(&[(7, "alice")], &[], false));
    apply(&ns, CH, snapshot(&[(7, "alice")], &[], false));
    apply(&ns, CH, remote_joined(7, "alice", None));
    apply(&ns, CH, snapshot(&[(7, "alice")], &[], true));
    assert_eq!(member_frames(&take(&observer)), [added("alice")]);
}

#[test]
fn a_replacing_snapshot_removes_remote_members_it_does_not_confirm() {
    let (ns, observer) = watched_room();
    apply(&ns, CH, snapshot(&[(7, "alice"), (7, "bob"), (8, "carol")], &[], false));
    take(&observer);
    apply(&ns, CH, snapshot(&[(7, "bob")], &[], true));
    let mut got = member_frames(&take(&observer));
    got.sort();
    assert_eq!(got, [removed("alice"), removed("carol")]);
    assert_eq!(members(&ns), ["bob", "observer"]);
}

#[test]
fn a_replacing_snapshot_keeps_a_stale_remote_member_that_is_connected_here() {
    let (ns, observer) = watched_room();
    let alice = conn(1);
    join(&ns, &alice, CH, "alice");
    apply(&ns, CH, remote_joined(7, "alice", None));
    take(&observer);
    apply(&ns, CH, snapshot(&[], &[], true));
    assert!(member_frames(&take(&observer)).is_empty());
    assert!(ns.has_local_member(CH, "alice"));
    // Node 7 was forgotten: the last local connection leaving now removes alice.
    assert_eq!(leave(&ns, &alice, CH).and_then(|l| l.member_removed).as_deref(), Some("alice"));
    assert_eq!(member_frames(&take(&observer)), [removed("alice")]);
}

#[test]
fn a_replacing_snapshot_keeps_a_member_it_confirms_on_another_node() {
    let (ns, observer) = watched_room();
    apply(&ns, CH, snapshot(&[(7, "alice"), (8, "alice")], &[], false));
    take(&observer);
    apply(&ns, CH, snapshot(&[(8, "alice")], &[], true));
    assert!(member_frames(&take(&observer)).is_empty());
    apply(&ns, CH, remote_left(8, "alice"));
    assert_eq!(member_frames(&take(&observer)), [removed("alice")], "node 7 no longer holds alice");
}

#[test]
fn a_remote_member_is_announced_with_its_user_info() {
    let (ns, observer) = watched_room();
    apply(&ns, CH, remote_joined(7, "alice", Some(r#"{"name":"Alice"}"#)));
    let frames = take(&observer);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].data, serde_json::json!({ "user_id": "alice", "user_info": { "name": "Alice" } }));
    let newcomer = conn(2);
    join(&ns, &newcomer, CH, "newcomer");
    assert_eq!(take(&newcomer)[0].data["presence"]["hash"]["alice"], serde_json::json!({ "name": "Alice" }));
}

#[test]
fn remote_counts_are_added_to_the_local_count() {
    let (ns, _) = namespace();
    let local = conn(1);
    subscribe(&ns, &local, CHAT, counts());
    assert_eq!(count_frames(&take(&local)), [1]);
    apply_counted(&ns, CHAT, RemoteUpdate::Count { node: 7, count: 5 });
    apply_counted(&ns, CHAT, RemoteUpdate::Count { node: 8, count: 3 });
    apply_counted(&ns, CHAT, RemoteUpdate::Count { node: 7, count: 0 });
    assert_eq!(count_frames(&take(&local)), [6, 9, 4], "a count of 0 forgets the node");
}

#[test]
fn a_replacing_snapshot_replaces_the_remote_counts() {
    let (ns, _) = namespace();
    let local = conn(1);
    subscribe(&ns, &local, CHAT, counts());
    apply_counted(&ns, CHAT, RemoteUpdate::Count { node: 7, count: 5 });
    apply_counted(&ns, CHAT, RemoteUpdate::Count { node: 8, count: 3 });
    take(&local);
    apply_counted(&ns, CHAT, snapshot(&[], &[(8, 2)], true));
    assert_eq!(count_frames(&take(&local)), [3], "node 7 dropped, node 8 now 2, plus 1 here");
}

#[test]
fn a_merged_snapshot_updates_the_counts_it_names_and_keeps_the_others() {
    let (ns, _) = namespace();
    let local = conn(1);
    subscribe(&ns, &local, CHAT, counts());
    apply_counted(&ns, CHAT, RemoteUpdate::Count { node: 7, count: 5 });
    take(&local);
    apply_counted(&ns, CHAT, snapshot(&[], &[(8, 2)], false));
    assert_eq!(count_frames(&take(&local)), [8]);
}

#[test]
fn a_replacing_snapshot_without_counts_announces_the_local_count_alone() {
    let (ns, _) = namespace();
    let local = conn(1);
    subscribe(&ns, &local, CHAT, counts());
    apply_counted(&ns, CHAT, RemoteUpdate::Count { node: 7, count: 5 });
    take(&local);
    apply_counted(&ns, CHAT, snapshot(&[], &[], true));
    assert_eq!(count_frames(&take(&local)), [1], "node 7's subscriptions are gone");
}

#[test]
fn a_new_local_subscriber_hears_the_cluster_wide_count_of_a_snapshot() {
    let (ns, _) = namespace();
    assert!(apply_counted(&ns, CHAT, snapshot(&[], &[(7, 4)], false)));
    let local = conn(1);
    subscribe(&ns, &local, CHAT, counts());
    assert_eq!(count_frames(&take(&local)), [5]);
}

#[test]
fn a_snapshot_keeps_the_cached_event_that_expires_later() {
    let (ns, _) = namespace();
    let now = Instant::now();
    let channel = "cache-news";
    apply(&ns, channel, cache_snapshot("old", "1", now + Duration::from_secs(60)));
    apply(&ns, channel, cache_snapshot("older", "0", now + Duration::from_secs(30)));
    assert_eq!(stored_cache(&ns, channel), Some(("old".to_owned(), "1".to_owned())));
    apply(&ns, channel, cache_snapshot("new", "2", now + Duration::from_secs(90)));
    assert_eq!(stored_cache(&ns, channel), Some(("new".to_owned(), "2".to_owned())));
    let local = conn(1);
    subscribe(&ns, &local, channel, NO_COUNTS);
    let frames = take(&local);
    assert_eq!((frames[1].event.as_str(), &frames[1].data), ("new", &serde_json::json!(2)));
}

#[test]
fn a_snapshot_of_an_unknown_channel_keeps_it_until_interest_is_dropped() {
    let (ns, _) = namespace();
    assert!(apply(&ns, CH, snapshot(&[(7, "alice")], &[(7, 1)], false)));
    assert!(ns.has_channel(CH));
    assert!(!ns.has_local_subscribers(CH));
    assert!(ns.locally_subscribed().is_empty());
    ns.sweep();
    assert!(ns.has_channel(CH), "the sweep keeps a channel the node listens to");
    ns.drop_interest(CH);
    assert!(!ns.has_channel(CH));
}

#[test]
fn dropping_interest_forgets_remote_members_and_counts_but_keeps_local_ones() {
    let (ns, _) = namespace();
    let alice = conn(1);
    join(&ns, &alice, CH, "alice");
    apply(&ns, CH, snapshot(&[(7, "bob"), (7, "alice")], &[(7, 2)], false));
    ns.drop_interest(CH);
    assert!(ns.has_channel(CH));
    assert_eq!(members(&ns), ["alice"]);
    assert_eq!(ns.counts(CH), crate::namespace::ChannelCounts { subscription_count: 1, user_count: 1 });
    assert_eq!(leave(&ns, &alice, CH).and_then(|l| l.member_removed).as_deref(), Some("alice"));
}

#[test]
fn an_update_for_a_channel_without_local_state_is_reported_unneeded() {
    let (ns, _) = namespace();
    assert!(!apply(&ns, CH, remote_joined(7, "alice", None)));
    assert!(!apply(&ns, CHAT, RemoteUpdate::Count { node: 7, count: 3 }));
    assert!(!apply(&ns, CHAT, remote_event(CHAT, "e", "{}", None)));
    assert!(!ns.has_channel(CH));
    assert!(!ns.has_channel(CHAT));
}

#[test]
fn a_remote_event_reaches_local_subscribers_except_the_excluded_one() {
    let (ns, _) = namespace();
    let (a, b) = (conn(1), conn(2));
    subscribe(&ns, &a, CHAT, NO_COUNTS);
    subscribe(&ns, &b, CHAT, NO_COUNTS);
    take(&a);
    take(&b);
    assert!(apply(&ns, CHAT, remote_event(CHAT, "greet", r#"{"hi":1}"#, Some(2))));
    let to_a = take(&a);
    assert_eq!(to_a.len(), 1);
    assert_eq!((to_a[0].event.as_str(), to_a[0].channel.as_deref()), ("greet", Some(CHAT)));
    assert_eq!(to_a[0].data, serde_json::json!({ "hi": 1 }));
    assert!(take(&b).is_empty());
}

#[test]
fn local_members_and_counts_list_only_what_this_node_holds() {
    let (ns, _) = namespace();
    let (alice, reader) = (conn(1), conn(2));
    join_limited(&ns, &alice, CH, "alice", Some(r#"{"n":1}"#), 100).expect("joined");
    subscribe(&ns, &reader, CHAT, NO_COUNTS);
    apply(&ns, CH, snapshot(&[(7, "bob")], &[(7, 4)], false));
    let members = ns.local_members();
    assert_eq!(members, [(Arc::from(CH), Arc::from("alice"), Some(Arc::from(r#"{"n":1}"#)))]);
    let mut counts = ns.local_counts();
    counts.sort();
    assert_eq!(counts, [(Arc::from(CHAT), 1), (Arc::from(CH), 1)]);
    assert_eq!(ns.local_count(CH), 1);
}
