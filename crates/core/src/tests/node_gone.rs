//! A node leaving or dying (`Namespace::node_gone`): its members disappear unless held here or
//! on another node, and its subscription counts stop counting.

use std::time::Duration;

use super::*;

const CH: &str = "presence-room";
const CHAT: &str = "chat";

fn counts() -> CountPolicy {
    counts_on(1000, Duration::from_secs(60))
}

fn gone(ns: &Namespace, node: u32) {
    ns.node_gone(node, counts(), &metrics());
}

/// A namespace with one local observer on the presence channel (its frames taken).
fn watched_room() -> (Namespace, Arc<RecordingSink>, Arc<Connection>) {
    let (ns, sink) = namespace();
    let observer = conn(100);
    join(&ns, &observer, CH, "observer");
    take(&observer);
    sink.take();
    (ns, sink, observer)
}

#[test]
fn the_members_of_a_gone_node_are_removed_with_member_removed() {
    let (ns, sink, observer) = watched_room();
    apply(&ns, CH, snapshot(&[(7, "alice"), (7, "bob"), (8, "carol")], &[], false));
    take(&observer);
    gone(&ns, 7);
    let mut got = member_frames(&take(&observer));
    got.sort();
    assert_eq!(got, [("removed", "alice".to_owned()), ("removed", "bob".to_owned())]);
    let ids: Vec<String> = ns.user_ids(CH).iter().map(|u| u.to_string()).collect();
    assert_eq!(ids, ["carol", "observer"]);
    // The member_removed webhook of a cluster is the adapter's verdict, not this node's.
    assert!(sink.take().is_empty());
}

#[test]
fn a_member_of_a_gone_node_that_is_connected_here_stays() {
    let (ns, _, observer) = watched_room();
    let alice = conn(1);
    join(&ns, &alice, CH, "alice");
    apply(&ns, CH, remote_joined(7, "alice", None));
    take(&observer);
    gone(&ns, 7);
    assert!(member_frames(&take(&observer)).is_empty());
    assert!(ns.has_local_member(CH, "alice"));
}

#[test]
fn a_member_of_a_gone_node_that_another_node_holds_stays() {
    let (ns, _, observer) = watched_room();
    apply(&ns, CH, snapshot(&[(7, "alice"), (8, "alice")], &[], false));
    take(&observer);
    gone(&ns, 7);
    assert!(member_frames(&take(&observer)).is_empty());
    gone(&ns, 8);
    assert_eq!(member_frames(&take(&observer)), [("removed", "alice".to_owned())]);
}

#[test]
fn the_counts_of_a_gone_node_are_dropped_with_a_count_update() {
    let (ns, _) = namespace();
    let local = conn(1);
    subscribe(&ns, &local, CHAT, counts());
    ns.apply_remote(CHAT, RemoteUpdate::Count { node: 7, count: 5 }, counts(), &metrics());
    ns.apply_remote(CHAT, RemoteUpdate::Count { node: 8, count: 2 }, counts(), &metrics());
    take(&local);
    gone(&ns, 7);
    assert_eq!(count_frames(&take(&local)), [3]);
}

#[test]
fn a_gone_node_without_counts_on_a_channel_causes_no_count_update() {
    let (ns, _) = namespace();
    let local = conn(1);
    subscribe(&ns, &local, CHAT, counts());
    ns.apply_remote(CHAT, RemoteUpdate::Count { node: 8, count: 2 }, counts(), &metrics());
    take(&local);
    gone(&ns, 7);
    assert!(take(&local).is_empty());
}

#[test]
fn a_gone_node_is_forgotten_on_every_channel_of_the_app() {
    let (ns, _) = namespace();
    let rooms = ["presence-a", "presence-b"];
    let observers = [conn(1), conn(2)];
    for (room, observer) in rooms.iter().zip(&observers) {
        join(&ns, observer, room, "observer");
        apply(&ns, room, remote_joined(7, "alice", None));
        take(observer);
    }
    gone(&ns, 7);
    for (room, observer) in rooms.iter().zip(&observers) {
        let frames = take(observer);
        assert_eq!(member_frames(&frames), [("removed", "alice".to_owned())], "{room}");
        assert_eq!(frames[0].channel.as_deref(), Some(*room));
    }
}

#[test]
fn a_gone_node_that_held_nothing_changes_nothing() {
    let (ns, _, observer) = watched_room();
    apply(&ns, CH, remote_joined(8, "alice", None));
    take(&observer);
    gone(&ns, 7);
    assert!(take(&observer).is_empty());
    assert_eq!(ns.user_ids(CH).len(), 2);
}
