//! Presence membership (PROTOCOL.md 5.5): several connections of one user are one member,
//! announced when the first joins and removed when the last one anywhere leaves; the member
//! list of `subscription_succeeded`; the member limit.

use serde_json::json;

use super::*;
use crate::events::ChannelEvent::{MemberAdded, MemberRemoved};

const CH: &str = "presence-room";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Join(usize),
    Leave(usize),
}

/// Every order in which connections 0 and 1 of one user can join and later leave.
fn every_order() -> Vec<Vec<Step>> {
    let steps = [Step::Join(0), Step::Join(1), Step::Leave(0), Step::Leave(1)];
    let mut orders = Vec::new();
    for a in 0..4 {
        for b in 0..4 {
            for c in 0..4 {
                for d in 0..4 {
                    let idx = [a, b, c, d];
                    if (0..4).any(|i| idx[i + 1..].contains(&idx[i])) {
                        continue;
                    }
                    let order: Vec<Step> = idx.iter().map(|&i| steps[i]).collect();
                    let pos = |s: Step| order.iter().position(|x| *x == s);
                    if pos(Step::Join(0)) < pos(Step::Leave(0)) && pos(Step::Join(1)) < pos(Step::Leave(1)) {
                        orders.push(order);
                    }
                }
            }
        }
    }
    orders
}

#[test]
fn two_connections_of_one_user_are_announced_on_first_join_and_removed_on_last_leave_in_every_order() {
    let orders = every_order();
    assert_eq!(orders.len(), 6);
    for order in orders {
        let (ns, sink) = namespace();
        let observer = conn(100);
        join(&ns, &observer, CH, "observer");
        take(&observer);
        sink.take();
        let alice = [conn(1), conn(2)];
        let mut here = [false, false];
        for step in &order {
            let was_member = here.iter().any(|h| *h);
            let (expected, got) = match *step {
                Step::Join(i) => {
                    let joined = join(&ns, &alice[i], CH, "alice");
                    here[i] = true;
                    assert_eq!(joined, Joined::New { occupied: false, new_member: !was_member }, "{order:?}");
                    let expected = (!was_member).then(|| vec![("added", "alice".to_owned())]);
                    (expected.unwrap_or_default(), member_frames(&take(&observer)))
                }
                Step::Leave(i) => {
                    let left = leave(&ns, &alice[i], CH).expect("was subscribed");
                    here[i] = false;
                    let last = !here.iter().any(|h| *h);
                    assert_eq!(left.member_removed.as_deref(), last.then_some("alice"), "{order:?}");
                    let expected = last.then(|| vec![("removed", "alice".to_owned())]);
                    (expected.unwrap_or_default(), member_frames(&take(&observer)))
                }
            };
            assert_eq!(got, expected, "after {step:?} in {order:?}");
            let listed = ns.user_ids(CH).iter().any(|u| &**u == "alice");
            assert_eq!(listed, here.iter().any(|h| *h), "after {step:?} in {order:?}");
        }
        let webhooks: Vec<_> =
            sink.take().into_iter().filter(|e| matches!(e, MemberAdded { .. } | MemberRemoved { .. })).collect();
        let expected_webhooks = if order[1] == Step::Leave(0) || order[1] == Step::Leave(1) {
            // The first connection left before the second joined: two separate visits.
            vec![ev_added(CH, "alice"), ev_removed(CH, "alice"), ev_added(CH, "alice"), ev_removed(CH, "alice")]
        } else {
            vec![ev_added(CH, "alice"), ev_removed(CH, "alice")]
        };
        assert_eq!(webhooks, expected_webhooks, "{order:?}");
    }
}

#[test]
fn member_added_goes_to_the_others_but_not_to_the_joining_connection() {
    let (ns, _) = namespace();
    let (bob, alice) = (conn(1), conn(2));
    join(&ns, &bob, CH, "bob");
    take(&bob);
    join_limited(&ns, &alice, CH, "alice", Some(r#"{"name":"Alice"}"#), 100).expect("joined");
    let to_bob = take(&bob);
    assert_eq!(to_bob.len(), 1);
    assert_eq!(to_bob[0].event, MEMBER_ADDED);
    assert_eq!(to_bob[0].channel.as_deref(), Some(CH));
    assert_eq!(to_bob[0].data, json!({ "user_id": "alice", "user_info": { "name": "Alice" } }));
    assert_eq!(take_events(&alice), [SUCCEEDED]);
}

#[test]
fn subscription_succeeded_lists_each_user_once_with_the_info_of_its_first_connection() {
    let (ns, _) = namespace();
    join_limited(&ns, &conn(1), CH, "bob", None, 100).expect("joined");
    join_limited(&ns, &conn(2), CH, "alice", Some(r#"{"n":1}"#), 100).expect("joined");
    join_limited(&ns, &conn(3), CH, "alice", Some(r#"{"n":2}"#), 100).expect("joined");
    let carol = conn(4);
    join(&ns, &carol, CH, "carol");
    let frames = take(&carol);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].event, SUCCEEDED);
    assert_eq!(
        frames[0].data,
        json!({ "presence": {
            "ids": ["alice", "bob", "carol"],
            "hash": { "alice": { "n": 1 }, "bob": null, "carol": null },
            "count": 3,
        } })
    );
}

#[test]
fn the_second_connection_of_a_member_sees_itself_in_the_member_list() {
    let (ns, _) = namespace();
    let (a1, a2) = (conn(1), conn(2));
    join(&ns, &a1, CH, "alice");
    join(&ns, &a2, CH, "alice");
    let frames = take(&a2);
    assert_eq!(frames[0].data["presence"]["ids"], json!(["alice"]));
    assert_eq!(frames[0].data["presence"]["count"], json!(1));
    assert_eq!(take_events(&a1), [SUCCEEDED], "no member_added for a user already present");
}

#[test]
fn subscribing_again_on_the_same_connection_repeats_subscription_succeeded_only() {
    let (ns, sink) = namespace();
    let (bob, alice) = (conn(1), conn(2));
    join(&ns, &bob, CH, "bob");
    join(&ns, &alice, CH, "alice");
    take(&bob);
    take(&alice);
    sink.take();
    assert_eq!(join(&ns, &alice, CH, "alice"), Joined::Again);
    assert_eq!(take_events(&alice), [SUCCEEDED]);
    assert!(take(&bob).is_empty());
    assert!(sink.take().is_empty());
    assert_eq!(ns.counts(CH).subscription_count, 2);
}

#[test]
fn a_member_present_on_another_node_is_not_announced_or_removed_by_local_connections() {
    let (ns, _) = namespace();
    let observer = conn(100);
    join(&ns, &observer, CH, "observer");
    assert!(apply(&ns, CH, remote_joined(7, "alice", None)));
    assert_eq!(member_frames(&take(&observer)), [("added", "alice".to_owned())]);

    let alice = conn(1);
    assert_eq!(join(&ns, &alice, CH, "alice"), Joined::New { occupied: false, new_member: false });
    let left = leave(&ns, &alice, CH).expect("was subscribed");
    assert_eq!(left.member_removed, None);
    assert!(member_frames(&take(&observer)).is_empty());
    assert!(ns.user_ids(CH).iter().any(|u| &**u == "alice"), "still present on node 7");

    apply(&ns, CH, remote_left(7, "alice"));
    assert_eq!(member_frames(&take(&observer)), [("removed", "alice".to_owned())]);
    assert!(!ns.user_ids(CH).iter().any(|u| &**u == "alice"));
}

#[test]
fn a_remote_node_leaving_keeps_a_member_that_is_connected_here() {
    let (ns, _) = namespace();
    let (observer, alice) = (conn(100), conn(1));
    join(&ns, &observer, CH, "observer");
    join(&ns, &alice, CH, "alice");
    take(&observer);
    apply(&ns, CH, remote_joined(7, "alice", None));
    apply(&ns, CH, remote_left(7, "alice"));
    assert!(member_frames(&take(&observer)).is_empty());
    assert!(ns.has_local_member(CH, "alice"));
    assert_eq!(leave(&ns, &alice, CH).and_then(|l| l.member_removed).as_deref(), Some("alice"));
    assert_eq!(member_frames(&take(&observer)), [("removed", "alice".to_owned())]);
}

#[test]
fn the_cluster_is_told_of_the_first_and_last_local_connection_of_a_member() {
    let (ns, _, adapter) = clustered_namespace();
    apply(&ns, CH, snapshot(&[(7, "alice")], &[], false));
    let (a1, a2) = (conn(1), conn(2));
    join(&ns, &a1, CH, "alice");
    join(&ns, &a2, CH, "alice");
    let member_changes = |changes: Vec<LocalChange>| -> Vec<LocalChange> {
        changes.into_iter().filter(|c| !matches!(c, LocalChange::Count { .. })).collect()
    };
    // A node-level fact: this node now holds alice, even though node 7 already did.
    assert_eq!(
        member_changes(adapter.take_changes()),
        [LocalChange::MemberJoined { channel: Arc::from(CH), user_id: Arc::from("alice"), user_info: None }]
    );
    leave(&ns, &a1, CH);
    assert_eq!(member_changes(adapter.take_changes()), []);
    leave(&ns, &a2, CH);
    assert_eq!(
        member_changes(adapter.take_changes()),
        [
            LocalChange::MemberLeft { channel: Arc::from(CH), user_id: Arc::from("alice") },
            LocalChange::Vacated { channel: Arc::from(CH) },
        ]
    );
}

#[test]
fn a_full_channel_refuses_a_new_user_but_admits_another_connection_of_a_member() {
    let (ns, sink) = namespace();
    let (a1, bob, a2) = (conn(1), conn(2), conn(3));
    join_limited(&ns, &a1, CH, "alice", None, 1).expect("room for one");
    take(&a1);
    sink.take();
    assert_eq!(
        join_limited(&ns, &bob, CH, "bob", None, 1),
        Err(SubscribeError::PresenceFull { channel: CH.to_owned(), limit: 1 })
    );
    assert!(take(&bob).is_empty(), "a refused connection gets no frame from the namespace");
    assert!(take(&a1).is_empty(), "nobody hears of the refused user");
    assert!(sink.take().is_empty());
    assert_eq!(join_limited(&ns, &a2, CH, "alice", None, 1), Ok(Joined::New { occupied: false, new_member: false }));
    assert_eq!(ns.counts(CH).subscription_count, 2);
    assert_eq!(ns.counts(CH).user_count, 1);
}

#[test]
fn a_refused_first_subscriber_leaves_no_empty_channel_behind() {
    let (ns, sink) = namespace();
    let bob = conn(1);
    assert!(matches!(join_limited(&ns, &bob, CH, "bob", None, 0), Err(SubscribeError::PresenceFull { .. })));
    assert!(!ns.has_channel(CH));
    assert!(ns.occupied("").is_empty());
    assert!(sink.take().is_empty(), "no channel_occupied for a refused subscription");
}

#[test]
fn a_refusal_keeps_a_channel_this_node_listens_to_for_the_cluster() {
    let (ns, _) = namespace();
    assert!(apply(&ns, CH, snapshot(&[(7, "alice")], &[], false)));
    let bob = conn(1);
    assert!(join_limited(&ns, &bob, CH, "bob", None, 1).is_err(), "alice on node 7 fills the channel");
    assert!(ns.has_channel(CH), "kept: the node still listens to its cluster traffic");
    assert!(!ns.has_local_subscribers(CH));
    assert_eq!(ns.user_ids(CH), [Arc::from("alice")]);
}

#[test]
fn unsubscribing_a_connection_that_never_subscribed_changes_nothing() {
    let (ns, sink) = namespace();
    let alice = conn(1);
    join(&ns, &alice, CH, "alice");
    sink.take();
    assert_eq!(leave(&ns, &conn(2), CH), None);
    assert_eq!(leave(&ns, &conn(2), "presence-elsewhere"), None);
    assert_eq!(ns.user_ids(CH), [Arc::from("alice")]);
    assert!(sink.take().is_empty());
}
