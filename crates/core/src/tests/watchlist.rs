//! Signed-in users and watchlists (PROTOCOL.md 8.4–8.5): a user is online while any connection
//! is signed in as them; watchers hear `online` on the first connection and `offline` after the
//! last one, and nothing in between.

use serde_json::Value;

use super::*;
use crate::users::Users;

const WATCHLIST_EVENTS: &str = "pusher_internal:watchlist_events";

fn sign_in(users: &Users, conn: &Arc<Connection>, user_id: &str, watchlist: &[&str]) -> bool {
    let watchlist: Vec<String> = watchlist.iter().map(|s| s.to_string()).collect();
    users.sign_in(conn, &Arc::from(user_id), [], &watchlist, true, &metrics())
}

fn sign_out(users: &Users, conn: &Connection, user_id: &str) -> bool {
    users.sign_out(conn.socket_id.seq, &Arc::from(user_id), true, &metrics())
}

/// Ids of one `name` element of a watchlist_events frame.
fn ids(frame: &Frame, name: &str) -> Vec<String> {
    let events = frame.data["events"].as_array().expect("events array");
    events
        .iter()
        .filter(|e| e["name"] == name)
        .flat_map(|e| e["user_ids"].as_array().expect("user_ids").iter().map(|u| u.as_str().expect("id").to_owned()))
        .collect()
}

/// The watchlist_events frames queued for `conn`, as (online ids, offline ids).
fn watch_frames(conn: &Connection) -> Vec<(Vec<String>, Vec<String>)> {
    let frames = take(conn);
    assert!(frames.iter().all(|f| f.event == WATCHLIST_EVENTS), "{frames:?}");
    frames.iter().map(|f| (ids(f, "online"), ids(f, "offline"))).collect()
}

fn online(id: &str) -> (Vec<String>, Vec<String>) {
    (vec![id.to_owned()], vec![])
}

fn offline(id: &str) -> (Vec<String>, Vec<String>) {
    (vec![], vec![id.to_owned()])
}

#[test]
fn a_watcher_learns_which_watched_users_are_online_when_it_signs_in() {
    let users = Users::default();
    sign_in(&users, &conn(1), "alice", &[]);
    let watcher = conn(2);
    sign_in(&users, &watcher, "wendy", &["alice", "bob"]);
    assert_eq!(watch_frames(&watcher), [(vec!["alice".to_owned()], vec!["bob".to_owned()])]);
}

#[test]
fn a_watcher_is_told_when_a_watched_user_comes_online_and_of_nobody_else() {
    let users = Users::default();
    let watcher = conn(1);
    sign_in(&users, &watcher, "wendy", &["alice"]);
    take(&watcher);
    sign_in(&users, &conn(2), "carol", &[]);
    assert!(watch_frames(&watcher).is_empty());
    sign_in(&users, &conn(3), "alice", &[]);
    assert_eq!(watch_frames(&watcher), [online("alice")]);
}

#[test]
fn a_second_connection_of_a_watched_user_is_not_announced() {
    let users = Users::default();
    let watcher = conn(1);
    sign_in(&users, &watcher, "wendy", &["alice"]);
    take(&watcher);
    assert!(sign_in(&users, &conn(2), "alice", &[]));
    assert!(!sign_in(&users, &conn(3), "alice", &[]));
    assert_eq!(watch_frames(&watcher), [online("alice")]);
}

#[test]
fn a_watched_user_goes_offline_only_when_its_last_connection_closes_in_either_order() {
    for last_first in [false, true] {
        let users = Users::default();
        let watcher = conn(1);
        sign_in(&users, &watcher, "wendy", &["alice"]);
        let alice = [conn(2), conn(3)];
        sign_in(&users, &alice[0], "alice", &[]);
        sign_in(&users, &alice[1], "alice", &[]);
        take(&watcher);
        let order = if last_first { [1, 0] } else { [0, 1] };
        assert!(!sign_out(&users, &alice[order[0]], "alice"), "one connection left");
        assert!(watch_frames(&watcher).is_empty());
        assert!(users.is_local("alice"));
        assert!(sign_out(&users, &alice[order[1]], "alice"), "the last connection");
        assert_eq!(watch_frames(&watcher), [offline("alice")]);
        assert!(!users.is_local("alice"));
    }
}

#[test]
fn signing_out_a_connection_twice_or_as_another_user_is_not_a_last_connection() {
    let users = Users::default();
    let alice = conn(1);
    sign_in(&users, &alice, "alice", &[]);
    assert!(!sign_out(&users, &alice, "bob"));
    assert!(sign_out(&users, &alice, "alice"));
    assert!(!sign_out(&users, &alice, "alice"));
}

#[test]
fn every_connection_watching_a_user_is_told() {
    let users = Users::default();
    let (w1, w2, x) = (conn(1), conn(2), conn(3));
    sign_in(&users, &w1, "wendy", &["alice"]);
    sign_in(&users, &w2, "wendy", &["alice"]);
    sign_in(&users, &x, "xavier", &["alice", "bob"]);
    for c in [&w1, &w2, &x] {
        take(c);
    }
    let alice = conn(4);
    sign_in(&users, &alice, "alice", &[]);
    sign_out(&users, &alice, "alice");
    for c in [&w1, &w2, &x] {
        assert_eq!(watch_frames(c), [online("alice"), offline("alice")]);
    }
}

#[test]
fn a_watcher_that_closed_is_no_longer_told() {
    let users = Users::default();
    let watcher = conn(1);
    sign_in(&users, &watcher, "wendy", &["alice"]);
    sign_out(&users, &watcher, "wendy");
    take(&watcher);
    sign_in(&users, &conn(2), "alice", &[]);
    assert!(take(&watcher).is_empty());
}

#[test]
fn signing_in_again_replaces_the_watchlist() {
    let users = Users::default();
    let watcher = conn(1);
    sign_in(&users, &watcher, "wendy", &["alice"]);
    sign_in(&users, &watcher, "wendy", &["bob"]);
    assert_eq!(watch_frames(&watcher), [offline("alice"), offline("bob")], "each sign-in sends its initial state");
    sign_in(&users, &conn(2), "alice", &[]);
    sign_in(&users, &conn(3), "bob", &[]);
    assert_eq!(watch_frames(&watcher), [online("bob")]);
}

#[test]
fn without_watchlist_events_nobody_is_told_and_no_initial_state_is_sent() {
    let users = Users::default();
    let watcher = conn(1);
    let list = vec!["alice".to_owned()];
    users.sign_in(&watcher, &Arc::from("wendy"), [], &list, false, &metrics());
    let alice = conn(2);
    assert!(
        users.sign_in(&alice, &Arc::from("alice"), [], &[], false, &metrics()),
        "still reports the first connection"
    );
    assert!(users.sign_out(alice.socket_id.seq, &Arc::from("alice"), false, &metrics()));
    assert!(take(&watcher).is_empty());
}

#[test]
fn an_empty_watchlist_gets_no_initial_state() {
    let users = Users::default();
    let c = conn(1);
    sign_in(&users, &c, "wendy", &[]);
    assert!(take(&c).is_empty());
}

#[test]
fn in_a_cluster_watchers_follow_the_clusters_verdicts_only() {
    let users = Users::default();
    users.set_cluster_online([Arc::from("alice")]);
    let watcher = conn(1);
    sign_in(&users, &watcher, "wendy", &["alice", "bob"]);
    assert_eq!(watch_frames(&watcher), [(vec!["alice".to_owned()], vec!["bob".to_owned()])]);
    let bob = conn(2);
    assert!(sign_in(&users, &bob, "bob", &[]), "the node still reports its first local connection");
    assert!(watch_frames(&watcher).is_empty(), "bob's online verdict is the cluster's");
    users.cluster_status("bob", true, true, &metrics());
    users.cluster_status("bob", true, true, &metrics());
    assert_eq!(watch_frames(&watcher), [online("bob")], "a repeated verdict is not repeated");
    assert!(sign_out(&users, &bob, "bob"));
    assert!(watch_frames(&watcher).is_empty());
    users.cluster_status("bob", false, true, &metrics());
    assert_eq!(watch_frames(&watcher), [offline("bob")]);
}

#[test]
fn connections_of_a_user_lists_each_of_its_connections_until_they_sign_out() {
    let users = Users::default();
    let (a1, a2) = (conn(1), conn(2));
    sign_in(&users, &a1, "alice", &[]);
    sign_in(&users, &a2, "alice", &[]);
    let mut seqs: Vec<u64> = users.connections_of("alice").iter().map(|c| c.socket_id.seq).collect();
    seqs.sort();
    assert_eq!(seqs, [1, 2]);
    assert_eq!(users.local_users(), [Arc::from("alice")]);
    sign_out(&users, &a1, "alice");
    assert_eq!(users.connections_of("alice").len(), 1);
    assert!(users.connections_of("nobody").is_empty());
}

#[test]
fn a_watchlist_over_the_apps_limit_is_cut_with_error_4302() {
    let limits = AppLimits { enable_watchlist_events: true, max_watchlist_size: 2, ..AppLimits::default() };
    let (hub, _) = hub(limits);
    let mut watcher = connect(&hub);
    let user_data = r#"{"id":"wendy","watchlist":["a","b","c"]}"#;
    assert!(watcher.handle_text(&signin_text(&watcher, user_data)).is_none());
    let frames = take(watcher.connection());
    let names: Vec<&str> = frames.iter().map(|f| f.event.as_str()).collect();
    assert_eq!(names, ["pusher:signin_success", ERROR, WATCHLIST_EVENTS]);
    assert_eq!(frames[1].data["code"], Value::from(4302));
    assert_eq!(ids(&frames[2], "offline"), ["a", "b"]);
    assert_eq!(watcher.user().expect("signed in").watchlist, ["a", "b"]);

    let mut c = connect(&hub);
    c.handle_text(&signin_text(&c, r#"{"id":"c"}"#));
    assert!(take(watcher.connection()).is_empty(), "c was cut from the watchlist");
    let mut b = connect(&hub);
    b.handle_text(&signin_text(&b, r#"{"id":"b"}"#));
    assert_eq!(watch_frames(watcher.connection()), [online("b")]);
    drop(b);
    assert_eq!(watch_frames(watcher.connection()), [offline("b")], "closing the session signs it out");
}

#[test]
fn an_event_to_a_user_reaches_every_signed_in_connection_after_its_signin_reply() {
    let users = Users::default();
    let (a1, a2, b) = (conn(1), conn(2), conn(3));
    let reply = || bytes::Bytes::from_static(br#"{"event":"pusher:signin_success","data":{}}"#);
    for (c, id) in [(&a1, "alice"), (&a2, "alice"), (&b, "bob")] {
        users.sign_in(c, &Arc::from(id), [reply()], &[], false, &metrics());
    }
    let frame = bytes::Bytes::from_static(br##"{"event":"notice","channel":"#server-to-user-alice","data":"1"}"##);
    assert_eq!(users.deliver("alice", &frame, Some(2), &metrics()), 1, "the excluded connection is skipped");
    assert_eq!(take_events(&a1), ["pusher:signin_success", "notice"], "the reply first, then the event");
    assert_eq!(take_events(&a2), ["pusher:signin_success"]);
    assert_eq!(take_events(&b), ["pusher:signin_success"]);
    sign_out(&users, &a1, "alice");
    sign_out(&users, &a2, "alice");
    assert_eq!(users.deliver("alice", &frame, None, &metrics()), 0, "nobody signed in as alice any more");
}
