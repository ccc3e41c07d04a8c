//! Webhooks from a cluster: two nodes sharing one private Redis report to one receiver, and
//! channel_vacated / member_removed are sent only when the whole cluster (not one node) empties
//! or the user is gone from every node past the removal delay. Each test starts its own
//! `redis-server` on a free port (never the shared one) and in-process nodes.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::time::Duration;

use support::*;

/// Two nodes of one cluster reporting webhooks to one receiver (each node its own data_dir).
async fn webhook_nodes(redis: &Redis, receiver: &WebhookReceiver, tag: &str) -> (TestServer, TestServer) {
    let types = ["channel_occupied", "channel_vacated", "member_added", "member_removed"];
    let mut out = Vec::new();
    for i in 0..2 {
        let mut cfg = webhook_config(&receiver.url(), &types, &format!("cluster-{tag}-{i}"));
        cfg.adapter = node_config(redis).adapter;
        out.push(start_with(cfg).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = out.pop().unwrap();
    (out.pop().unwrap(), b)
}

#[tokio::test]
async fn no_vacated_webhook_while_another_node_has_subscribers() {
    let redis = Redis::start();
    let receiver = WebhookReceiver::start().await;
    let (a_node, b_node) = webhook_nodes(&redis, &receiver, "vacated").await;
    let mut a = a_node.client().await;
    a.subscribe("shared").await;
    let mut b = b_node.client().await;
    b.subscribe("shared").await;
    let occupied = receiver.wait_events(1, WAIT).await;
    assert_eq!(names(&occupied), ["channel_occupied:shared"]);
    drop(a); // node B still has a subscriber
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(names(&receiver.events()), ["channel_occupied:shared"], "no vacated while node B has a subscriber");
    drop(b);
    let all = receiver.wait_events(2, WAIT).await;
    assert_eq!(names(&all), ["channel_occupied:shared", "channel_vacated:shared"]);
}

#[tokio::test]
async fn user_moving_between_nodes_within_the_delay_causes_no_webhook_pair() {
    let redis = Redis::start();
    let receiver = WebhookReceiver::start().await;
    let (a_node, b_node) = webhook_nodes(&redis, &receiver, "move").await;
    let mut stay = a_node.client().await;
    stay.subscribe_presence("presence-move", r#"{"user_id":"stay"}"#).await;
    let mut mover = a_node.client().await;
    mover.subscribe_presence("presence-move", r#"{"user_id":"mover"}"#).await;
    let first = receiver.wait_events(3, WAIT).await;
    assert_eq!(
        names(&first),
        ["channel_occupied:presence-move", "member_added:presence-move", "member_added:presence-move"]
    );
    drop(mover); // page reload that lands on node B
    let mut again = b_node.client().await;
    again.subscribe_presence("presence-move", r#"{"user_id":"mover"}"#).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(receiver.events().len(), 3, "no member_removed/member_added pair: {:?}", names(&receiver.events()));
    drop(again);
    let last = receiver.wait_events(4, WAIT).await;
    assert_eq!(last[3]["name"], "member_removed");
    assert_eq!(last[3]["user_id"], "mover");
}
