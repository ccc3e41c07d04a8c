//! Cluster-wide state between herald nodes sharing one private Redis: one presence member per
//! user whichever nodes it is connected to, with the HTTP API of any node answering for the
//! cluster; cluster-wide subscription counts; terminate_connections and watchlist events for
//! users on other nodes. Each test starts its own `redis-server` on a free port (never the
//! shared one) and in-process nodes.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

#[tokio::test]
async fn same_user_on_two_nodes_is_one_member() {
    let redis = Redis::start();
    let n = nodes(&redis, 2).await;
    let mut watcher = n[0].client().await;
    watcher.subscribe_presence("presence-room", r#"{"user_id":"w"}"#).await;

    let mut u_a = n[0].client().await;
    let ok = u_a.subscribe_presence("presence-room", r#"{"user_id":"u","user_info":{"n":1}}"#).await;
    assert_eq!(data_of(&ok)["presence"]["count"], 2);
    assert_eq!(watcher.recv().await["event"], "pusher_internal:member_added");

    // node A writes its members to the cluster state asynchronously: wait until it did, so the
    // join on node B must list them (not only announce them later with member_added)
    wait_users(&n[1], "presence-room", json!({"users": [{"id": "u"}, {"id": "w"}]})).await;
    let mut u_b = n[1].client().await;
    let ok = u_b.subscribe_presence("presence-room", r#"{"user_id":"u","user_info":{"n":1}}"#).await;
    let presence = &data_of(&ok)["presence"];
    assert_eq!(presence["count"], 2, "node B sees the members of node A: {presence}");
    assert_eq!(presence["ids"], json!(["u", "w"]));
    watcher.expect_silence().await; // no second member_added for the same user

    // the HTTP API on either node answers cluster-wide
    for node in &n {
        let users = node.api().get("/apps/app-id/channels/presence-room/users", &[]).await.json();
        assert_eq!(users, json!({"users": [{"id": "u"}, {"id": "w"}]}));
        let info =
            node.api().get("/apps/app-id/channels/presence-room", &[("info", "user_count,subscription_count")]).await;
        assert_eq!(info.json(), json!({"occupied": true, "user_count": 2, "subscription_count": 3}));
        let list = node.api().get("/apps/app-id/channels", &[]).await.json();
        assert_eq!(list, json!({"channels": {"presence-room": {}}}));
    }

    drop(u_a); // the user still has a connection on node B
    watcher.expect_silence().await;
    drop(u_b);
    let removed = watcher.recv().await;
    assert_eq!(
        removed,
        json!({"event": "pusher_internal:member_removed", "channel": "presence-room", "data": "{\"user_id\":\"u\"}"})
    );
}

#[tokio::test]
async fn subscription_count_is_cluster_wide() {
    let redis = Redis::start();
    let mut cfg = node_config(&redis);
    cfg.apps[0].limits.enable_subscription_count = true;
    let a_node = start_with(cfg.clone()).await;
    let b_node = start_with(cfg).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut a = a_node.client().await;
    a.subscribe("counted").await;
    assert_eq!(data_of(&a.recv_event("pusher_internal:subscription_count").await)["subscription_count"], 1);
    let mut b = b_node.client().await;
    b.subscribe("counted").await;
    // b sees the cluster total (its own + node A's), and so does a
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last_b = 0;
    while last_b != 2 && tokio::time::Instant::now() < deadline {
        last_b =
            data_of(&b.recv_event("pusher_internal:subscription_count").await)["subscription_count"].as_u64().unwrap();
    }
    assert_eq!(last_b, 2);
    assert_eq!(data_of(&a.recv_event("pusher_internal:subscription_count").await)["subscription_count"], 2);
}

#[tokio::test]
async fn terminate_connections_on_one_node_closes_the_user_on_every_node() {
    let redis = Redis::start();
    let n = nodes(&redis, 2).await;
    let mut b = n[1].client().await;
    let ud = r#"{"id":"kick-me"}"#;
    b.send(json!({"event": "pusher:signin", "data": {"auth": user_auth(&b.socket_id, ud), "user_data": ud}})).await;
    assert_eq!(b.recv().await["event"], "pusher:signin_success");
    let r = n[0].api().post("/apps/app-id/users/kick-me/terminate_connections", &json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(b.closed().await.code, 4009);
}

#[tokio::test]
async fn watchlist_sees_users_online_on_other_nodes() {
    let redis = Redis::start();
    let mut cfg = node_config(&redis);
    cfg.apps[0].limits.enable_watchlist_events = true;
    let a_node = start_with(cfg.clone()).await;
    let b_node = start_with(cfg).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    async fn signin(c: &mut Client, ud: &str) {
        c.send(json!({"event": "pusher:signin", "data": {"auth": user_auth(&c.socket_id, ud), "user_data": ud}})).await;
        assert_eq!(c.recv().await["event"], "pusher:signin_success");
    }
    // u-2 is online on node B before the watcher signs in on node A
    let mut u2 = b_node.client().await;
    signin(&mut u2, r#"{"id":"u-2"}"#).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut watcher = a_node.client().await;
    signin(&mut watcher, r#"{"id":"u-1","watchlist":["u-2","u-3"]}"#).await;
    let initial = watcher.recv().await;
    assert_eq!(
        initial["data"]["events"],
        json!([{"name": "online", "user_ids": ["u-2"]}, {"name": "offline", "user_ids": ["u-3"]}])
    );
    // u-3 comes online on node B, then on node A too (no second event), then leaves both
    let mut u3b = b_node.client().await;
    signin(&mut u3b, r#"{"id":"u-3"}"#).await;
    assert_eq!(watcher.recv().await["data"]["events"], json!([{"name": "online", "user_ids": ["u-3"]}]));
    let mut u3a = a_node.client().await;
    signin(&mut u3a, r#"{"id":"u-3"}"#).await;
    watcher.expect_silence().await;
    drop(u3b);
    watcher.expect_silence().await;
    drop(u3a);
    assert_eq!(watcher.recv().await["data"]["events"], json!([{"name": "offline", "user_ids": ["u-3"]}]));
}
