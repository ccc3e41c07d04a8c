//! A connection's protocol state machine fed text frames (`Session::handle_text`): subscribe
//! and unsubscribe, refusals, presence identity, client events, and what ending the session
//! undoes.

use serde_json::{json, Value};

use super::*;

const CHAT: &str = "chat";
const ROOM: &str = "presence-room";

fn ns(hub: &Arc<Hub>) -> Arc<Namespace> {
    hub.namespace(APP_ID)
}

#[test]
fn a_subscribe_frame_for_a_public_channel_is_answered_with_subscription_succeeded() {
    let (hub, sink) = hub(AppLimits::default());
    let mut s = connect(&hub);
    assert!(s.handle_text(&subscribe_text(CHAT, None, None)).is_none());
    let frames = take(s.connection());
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].event.as_str(), frames[0].channel.as_deref()), (SUCCEEDED, Some(CHAT)));
    assert_eq!(frames[0].data, json!({}));
    assert_eq!(s.subscription_count(), 1);
    assert_eq!(ns(&hub).counts(CHAT).subscription_count, 1);
    assert_eq!(sink.take(), [ev_occupied(CHAT)]);
    assert!(!s.is_authorized(), "a public channel does not authorize the connection");
}

#[test]
fn subscribing_twice_repeats_subscription_succeeded_without_a_second_subscription() {
    let (hub, _) = hub(AppLimits::default());
    let mut s = connect(&hub);
    s.handle_text(&subscribe_text(CHAT, None, None));
    s.handle_text(&subscribe_text(CHAT, None, None));
    assert_eq!(take_events(s.connection()), [SUCCEEDED, SUCCEEDED]);
    assert_eq!(s.subscription_count(), 1);
    assert_eq!(ns(&hub).counts(CHAT).subscription_count, 1);
}

#[test]
fn an_unsubscribe_frame_leaves_the_channel_and_frees_it() {
    let (hub, sink) = hub(AppLimits::default());
    let mut s = connect(&hub);
    s.handle_text(&subscribe_text(CHAT, None, None));
    take(s.connection());
    assert!(s.handle_text(&unsubscribe_text(CHAT)).is_none());
    assert!(take(s.connection()).is_empty(), "unsubscribing has no reply");
    assert_eq!(s.subscription_count(), 0);
    assert!(!ns(&hub).has_channel(CHAT));
    assert_eq!(sink.take(), [ev_occupied(CHAT), ev_vacated(CHAT)]);
    assert_eq!(publish(&ns(&hub), CHAT, "e", "{}", None), 0);
}

#[test]
fn unsubscribing_from_a_channel_never_subscribed_is_ignored() {
    let (hub, sink) = hub(AppLimits::default());
    let (mut a, mut b) = (connect(&hub), connect(&hub));
    b.handle_text(&subscribe_text(CHAT, None, None));
    a.handle_text(&unsubscribe_text(CHAT));
    assert!(take(a.connection()).is_empty());
    assert_eq!(ns(&hub).counts(CHAT).subscription_count, 1, "b is still subscribed");
    assert_eq!(sink.take(), [ev_occupied(CHAT)]);
}

#[test]
fn a_private_channel_without_auth_is_refused_with_a_null_code_error() {
    let (hub, _) = hub(AppLimits::default());
    let mut s = connect(&hub);
    s.handle_text(&subscribe_text("private-x", None, None));
    let frames = take(s.connection());
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].event, ERROR);
    assert_eq!(frames[0].data["code"], Value::Null);
    assert!(frames[0].data["message"].as_str().expect("message").contains("private-x"));
    assert_eq!(s.subscription_count(), 0);
    assert!(!ns(&hub).has_channel("private-x"));
}

#[test]
fn a_wrong_signature_is_refused_and_also_gets_subscription_error_when_the_app_asks_for_it() {
    let (hub, _) = hub(AppLimits { emit_subscription_error: true, ..AppLimits::default() });
    let mut s = connect(&hub);
    let bad = format!("{KEY}:{}", "0".repeat(64));
    s.handle_text(&subscribe_text("private-x", Some(&bad), None));
    let frames = take(s.connection());
    assert_eq!(frames.iter().map(|f| f.event.as_str()).collect::<Vec<_>>(), [ERROR, "pusher:subscription_error"]);
    assert_eq!(frames[1].channel.as_deref(), Some("private-x"));
    assert_eq!(frames[1].data["status"], json!(401));
    assert_eq!(s.subscription_count(), 0);
}

#[test]
fn an_invalid_channel_name_is_refused() {
    let (hub, _) = hub(AppLimits::default());
    let mut s = connect(&hub);
    s.handle_text(&subscribe_text("bad name!", None, None));
    let frames = take(s.connection());
    assert_eq!(frames[0].event, ERROR);
    assert_eq!(frames[0].data["message"], json!("Invalid channel name: bad name!"));
    assert_eq!(s.subscription_count(), 0);
}

#[test]
fn a_signed_private_subscription_succeeds_and_authorizes_the_connection() {
    let (hub, _) = hub(AppLimits::default());
    let mut s = connect(&hub);
    subscribe_session(&mut s, "private-x", None);
    assert_eq!(take_events(s.connection()), [SUCCEEDED]);
    assert!(s.is_authorized());
}

#[test]
fn a_presence_subscription_joins_as_its_channel_data_member() {
    let (hub, sink) = hub(AppLimits::default());
    let (mut bob, mut alice) = (connect(&hub), connect(&hub));
    subscribe_session(&mut bob, ROOM, Some("bob"));
    take(bob.connection());
    subscribe_session(&mut alice, ROOM, Some("alice"));
    let frames = take(alice.connection());
    assert_eq!(frames[0].data["presence"]["ids"], json!(["alice", "bob"]));
    assert_eq!(member_frames(&take(bob.connection())), [("added", "alice".to_owned())]);
    assert!(sink.take().contains(&ev_added(ROOM, "alice")));
}

#[test]
fn a_presence_subscription_without_channel_data_joins_as_the_signed_in_user() {
    let (hub, _) = hub(AppLimits::default());
    let mut s = connect(&hub);
    s.handle_text(&signin_text(&s, r#"{"id":"alice","user_info":{"name":"Alice"}}"#));
    take(s.connection());
    let auth = channel_auth(&s, ROOM, None);
    s.handle_text(&subscribe_text(ROOM, Some(&auth), None));
    let frames = take(s.connection());
    assert_eq!(frames[0].event, SUCCEEDED);
    assert_eq!(frames[0].data["presence"]["hash"], json!({ "alice": { "name": "Alice" } }));
}

#[test]
fn a_presence_subscription_without_channel_data_or_sign_in_is_refused() {
    let (hub, _) = hub(AppLimits::default());
    let mut s = connect(&hub);
    let auth = channel_auth(&s, ROOM, None);
    s.handle_text(&subscribe_text(ROOM, Some(&auth), None));
    assert_eq!(take_events(s.connection()), [ERROR]);
    assert!(!ns(&hub).has_channel(ROOM));
}

#[test]
fn a_full_presence_channel_refuses_with_pusher_error_and_keeps_no_subscription() {
    let (hub, _) = hub(AppLimits { max_presence_members_per_channel: 1, ..AppLimits::default() });
    let (mut alice, mut bob) = (connect(&hub), connect(&hub));
    subscribe_session(&mut alice, ROOM, Some("alice"));
    subscribe_session(&mut bob, ROOM, Some("bob"));
    let frames = take(bob.connection());
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].event, ERROR);
    assert_eq!(frames[0].data["message"], json!("Presence channel presence-room is full (limit 1 members)"));
    assert_eq!(bob.subscription_count(), 0);
    assert!(!bob.is_authorized(), "a refused subscription authorizes nothing");
    assert_eq!(ns(&hub).user_ids(ROOM), [Arc::from("alice")]);
}

#[test]
fn only_the_signed_in_users_own_server_to_user_channel_can_be_subscribed() {
    let (hub, _) = hub(AppLimits::default());
    let mut s = connect(&hub);
    s.handle_text(&subscribe_text("#server-to-user-alice", None, None));
    assert_eq!(take_events(s.connection()), [ERROR], "not signed in");
    s.handle_text(&signin_text(&s, r#"{"id":"alice"}"#));
    take(s.connection());
    s.handle_text(&subscribe_text("#server-to-user-bob", None, None));
    assert_eq!(take_events(s.connection()), [ERROR]);
    s.handle_text(&subscribe_text("#server-to-user-alice", None, None));
    assert_eq!(take_events(s.connection()), [SUCCEEDED]);
}

#[test]
fn ending_a_session_leaves_its_channels_and_signs_it_out() {
    let (hub, sink) = hub(AppLimits::default());
    let (mut bob, mut alice) = (connect(&hub), connect(&hub));
    subscribe_session(&mut bob, ROOM, Some("bob"));
    subscribe_session(&mut alice, ROOM, Some("alice"));
    alice.handle_text(&signin_text(&alice, r#"{"id":"alice"}"#));
    alice.handle_text(&subscribe_text(CHAT, None, None));
    take(bob.connection());
    sink.take();
    drop(alice);
    assert_eq!(member_frames(&take(bob.connection())), [("removed", "alice".to_owned())]);
    let mut events = sink.take();
    events.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(events, [ev_removed(ROOM, "alice"), ev_vacated(CHAT)]);
    assert!(!ns(&hub).has_channel(CHAT));
    assert!(!ns(&hub).users.is_local("alice"));
    assert_eq!(hub.connection_count(), 1);
    assert_eq!(ns(&hub).connection_count(), 1);
}

#[test]
fn the_sink_hears_each_subscription_and_each_leave_once_including_those_of_a_closing_connection() {
    let (hub, sink) = hub(AppLimits::default());
    let mut s = connect(&hub);
    let id = s.connection().socket_id_str.to_string();
    s.handle_text(&subscribe_text(CHAT, None, None));
    s.handle_text(&subscribe_text(CHAT, None, None));
    s.handle_text(&subscribe_text("news", None, None));
    s.handle_text(&subscribe_text("private-x", None, None));
    s.handle_text(&unsubscribe_text(CHAT));
    s.handle_text(&unsubscribe_text(CHAT));
    assert_eq!(
        sink.take_subscriptions(),
        [
            (id.clone(), CHAT.to_owned(), true),
            (id.clone(), "news".to_owned(), true),
            (id.clone(), CHAT.to_owned(), false)
        ],
        "a repeated subscribe, a refused one and a second unsubscribe are not changes"
    );
    drop(s);
    assert_eq!(sink.take_subscriptions(), [(id, "news".to_owned(), false)], "closing leaves what is left");
}

#[test]
fn an_unparseable_frame_is_answered_with_pusher_error_and_the_connection_stays_open() {
    let (hub, _) = hub(AppLimits::default());
    let mut s = connect(&hub);
    assert!(s.handle_text("{not json").is_none());
    let frames = take(s.connection());
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].event, ERROR);
    assert!(!s.connection().outbox.is_closing());
}

#[test]
fn a_ping_is_answered_with_a_pong() {
    let (hub, _) = hub(AppLimits::default());
    let mut s = connect(&hub);
    s.handle_text(r#"{"event":"pusher:ping","data":{}}"#);
    assert_eq!(take_events(s.connection()), ["pusher:pong"]);
}

#[test]
fn a_client_event_reaches_the_other_subscribers_with_the_senders_user_id() {
    let (hub, _) = hub(AppLimits { enable_client_messages: true, ..AppLimits::default() });
    let (mut alice, mut bob) = (connect(&hub), connect(&hub));
    subscribe_session(&mut alice, ROOM, Some("alice"));
    subscribe_session(&mut bob, ROOM, Some("bob"));
    take(alice.connection());
    take(bob.connection());
    let text = json!({ "event": "client-typing", "channel": ROOM, "data": { "on": true } }).to_string();
    alice.handle_text(&text);
    assert!(take(alice.connection()).is_empty(), "the sender does not get its own event");
    let frames = take(bob.connection());
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].event.as_str(), frames[0].channel.as_deref()), ("client-typing", Some(ROOM)));
    assert_eq!(frames[0].data, json!({ "on": true }));
    assert_eq!(frames[0].user_id.as_deref(), Some("alice"));
}

#[test]
fn a_client_event_on_a_channel_not_subscribed_is_refused() {
    let (hub, _) = hub(AppLimits { enable_client_messages: true, ..AppLimits::default() });
    let (mut alice, mut bob) = (connect(&hub), connect(&hub));
    subscribe_session(&mut bob, "private-x", None);
    take(bob.connection());
    let text = json!({ "event": "client-typing", "channel": "private-x", "data": {} }).to_string();
    alice.handle_text(&text);
    assert_eq!(take_events(alice.connection()), [ERROR]);
    assert!(take(bob.connection()).is_empty());
}

#[test]
fn a_client_event_of_an_app_over_its_message_quota_is_refused_and_the_connection_stays_open() {
    let (hub, _) = hub(AppLimits { enable_client_messages: true, ..AppLimits::default() });
    let (mut alice, mut bob) = (connect(&hub), connect(&hub));
    subscribe_session(&mut alice, ROOM, Some("alice"));
    subscribe_session(&mut bob, ROOM, Some("bob"));
    take(alice.connection());
    take(bob.connection());
    assert_eq!(ns(&hub).take_delivered(), 1, "bob's member_added to alice");
    ns(&hub).set_over_message_quota(true);
    let text = json!({ "event": "client-typing", "channel": ROOM, "data": {} }).to_string();
    alice.handle_text(&text);
    assert_eq!(take_events(alice.connection()), [ERROR]);
    assert!(take(bob.connection()).is_empty());
    assert_eq!(ns(&hub).take_delivered(), 0);
    ns(&hub).set_over_message_quota(false);
    alice.handle_text(&text);
    assert_eq!(take(bob.connection()).len(), 1, "allowed again once back under the quota");
    assert_eq!(ns(&hub).take_delivered(), 1);
}

#[test]
fn in_a_cluster_a_subscription_waits_for_the_channel_to_be_prepared() {
    let (hub, adapter) = clustered_hub(AppLimits::default());
    let mut s = connect(&hub);
    let pending = s.handle_text(&subscribe_text(CHAT, None, None)).expect("must wait for the cluster");
    assert_eq!(pending.channel(), CHAT);
    assert!(take(s.connection()).is_empty(), "nothing is sent before the channel is ready");
    assert!(!ns(&hub).has_channel(CHAT));
    s.finish(pending);
    assert_eq!(take_events(s.connection()), [SUCCEEDED]);
    assert_eq!(adapter.take_changes(), [LocalChange::Count { channel: Arc::from(CHAT), local: 1 }]);
    assert!(s.handle_text(&subscribe_text(CHAT, None, None)).is_none(), "already subscribed: answered at once");
    assert_eq!(take_events(s.connection()), [SUCCEEDED]);
}

#[test]
fn in_a_cluster_a_client_event_is_forwarded_with_its_sender_excluded() {
    let (hub, adapter) = clustered_hub(AppLimits { enable_client_messages: true, ..AppLimits::default() });
    let mut s = connect(&hub);
    let pending = s.handle_text(&subscribe_text("private-x", Some(&channel_auth(&s, "private-x", None)), None));
    s.finish(pending.expect("pending"));
    s.handle_text(&json!({ "event": "client-x", "channel": "private-x", "data": "hi" }).to_string());
    let forwarded = adapter.take_forwarded();
    assert_eq!(forwarded.len(), 1);
    let Forwarded { channel, frame, exclude } = &forwarded[0];
    assert_eq!(&**channel, "private-x");
    assert_eq!((frame.event.as_str(), &frame.data), ("client-x", &json!("hi")));
    assert_eq!(*exclude, Some(s.connection().socket_id));
}
