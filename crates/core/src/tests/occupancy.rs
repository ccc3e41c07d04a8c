//! Channel occupancy on one node: occupied on the first subscriber, vacated on the last, the
//! channel dropped once empty, and `#server-to-user-` channels kept out of webhooks and listings
//! (PROTOCOL.md 10.5).

use herald_protocol::channel::ChannelKind;

use super::*;

#[test]
fn occupied_and_vacated_are_reported_once_per_visit() {
    let (ns, sink) = namespace();
    let (a, b) = (conn(1), conn(2));
    assert_eq!(subscribe(&ns, &a, "chat", NO_COUNTS), Joined::New { occupied: true, new_member: false });
    assert_eq!(subscribe(&ns, &b, "chat", NO_COUNTS), Joined::New { occupied: false, new_member: false });
    assert_eq!(leave(&ns, &a, "chat"), Some(Left { vacated: false, member_removed: None }));
    assert_eq!(leave(&ns, &b, "chat"), Some(Left { vacated: true, member_removed: None }));
    subscribe(&ns, &a, "chat", NO_COUNTS);
    assert_eq!(sink.take(), [ev_occupied("chat"), ev_vacated("chat"), ev_occupied("chat")]);
}

#[test]
fn a_vacated_channel_is_dropped_and_publishing_to_it_reaches_nobody() {
    let (ns, _) = namespace();
    let a = conn(1);
    subscribe(&ns, &a, "chat", NO_COUNTS);
    take(&a);
    assert_eq!(publish(&ns, "chat", "e", "1", None), 1);
    leave(&ns, &a, "chat");
    assert!(!ns.has_channel("chat"));
    assert_eq!(publish(&ns, "chat", "e", "2", None), 0);
    assert_eq!(take_events(&a), ["e"]);
}

#[test]
fn a_presence_channel_reports_member_events_between_occupied_and_vacated() {
    let (ns, sink) = namespace();
    let alice = conn(1);
    join(&ns, &alice, "presence-room", "alice");
    leave(&ns, &alice, "presence-room");
    assert_eq!(
        sink.take(),
        [
            ev_occupied("presence-room"),
            ev_added("presence-room", "alice"),
            ev_removed("presence-room", "alice"),
            ev_vacated("presence-room"),
        ]
    );
}

#[test]
fn server_to_user_channels_report_no_occupancy_and_are_not_listed() {
    let (ns, sink) = namespace();
    let (a, b) = (conn(1), conn(2));
    subscribe(&ns, &a, "#server-to-user-alice", NO_COUNTS);
    subscribe(&ns, &b, "chat", NO_COUNTS);
    let listed: Vec<String> = ns.occupied("").iter().map(|(name, _)| name.to_string()).collect();
    assert_eq!(listed, ["chat"]);
    leave(&ns, &a, "#server-to-user-alice");
    assert_eq!(sink.take(), [ev_occupied("chat")]);
    assert!(!ns.has_channel("#server-to-user-alice"));
}

#[test]
fn occupied_lists_channels_by_prefix_with_their_counts_sorted_by_name() {
    let (ns, _) = namespace();
    subscribe(&ns, &conn(1), "private-b", NO_COUNTS);
    subscribe(&ns, &conn(2), "private-a", NO_COUNTS);
    subscribe(&ns, &conn(3), "private-a", NO_COUNTS);
    subscribe(&ns, &conn(4), "public", NO_COUNTS);
    join(&ns, &conn(5), "presence-x", "alice");
    let listed: Vec<(String, usize, usize)> =
        ns.occupied("pr").into_iter().map(|(name, c)| (name.to_string(), c.subscription_count, c.user_count)).collect();
    assert_eq!(
        listed,
        [("presence-x".to_owned(), 1, 1), ("private-a".to_owned(), 2, 0), ("private-b".to_owned(), 1, 0)]
    );
}

#[test]
fn a_publish_skips_the_excluded_connection() {
    let (ns, _) = namespace();
    let (a, b) = (conn(1), conn(2));
    subscribe(&ns, &a, "chat", NO_COUNTS);
    subscribe(&ns, &b, "chat", NO_COUNTS);
    take(&a);
    take(&b);
    assert_eq!(publish(&ns, "chat", "e", r#"{"x":1}"#, Some(1)), 1);
    assert!(take(&a).is_empty());
    let frames = take(&b);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].data, serde_json::json!({ "x": 1 }));
}

#[test]
fn max_channels_caps_occupied_channels_and_a_vacated_one_frees_a_place() {
    let (ns, _) = namespace();
    let (a, b) = (conn(1), conn(2));
    let capped = SubscribePolicy { max_members: 100, count: NO_COUNTS, max_channels: Some(2) };
    let join = |c: &Arc<Connection>, ch: &str| ns.subscribe(c, ch, ChannelKind::Public, None, capped, &metrics());
    assert!(join(&a, "one").is_ok());
    assert!(join(&a, "two").is_ok());
    assert_eq!(join(&b, "three"), Err(SubscribeError::ChannelLimit { channel: "three".to_owned(), limit: 2 }));
    assert!(!ns.has_channel("three"), "a refused channel is not kept");
    assert!(join(&b, "two").is_ok(), "an occupied channel takes more subscribers");
    assert_eq!(ns.occupied_channels(), 2);
    leave(&ns, &a, "one");
    assert_eq!(ns.occupied_channels(), 1);
    assert!(join(&b, "three").is_ok());
    assert_eq!(ns.occupied_channels(), 2);
}
