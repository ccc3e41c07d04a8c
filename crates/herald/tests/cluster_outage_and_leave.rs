//! Losing part of a cluster: local delivery goes on while Redis is down and cross-node delivery
//! resumes after; the members of a SIGKILLed node are reaped within the node timeout; a node
//! leaving gracefully drains its clients with 4200 without its members flapping. Each test
//! starts its own `redis-server` on a free port (never the shared one) and in-process nodes, or
//! a real herald process where a node must be SIGKILLed.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use support::*;

#[tokio::test]
async fn local_delivery_continues_while_redis_is_down_and_cluster_resumes_after() {
    let mut redis = Redis::start();
    let n = nodes(&redis, 2).await;
    let mut a = n[0].client().await;
    a.subscribe("news").await;
    let mut b = n[1].client().await;
    b.subscribe("news").await;

    redis.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // local fan-out on node A still works
    let r = n[0].api().trigger(json!({"name": "local", "channel": "news", "data": "x"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(a.recv().await["event"], "local");
    let ready = raw_http(n[0].addr, "GET", "/ready", b"").await;
    assert!(ready.body.starts_with("degraded"), "ready while Redis is down: {}", ready.body);

    redis.spawn();
    // after reconnect: cross-node delivery resumes
    let mut delivered = false;
    for _ in 0..100 {
        n[0].api().trigger(json!({"name": "again", "channel": "news", "data": "y"})).await;
        a.recv().await;
        if let Ok(Some(v)) = tokio::time::timeout(Duration::from_millis(200), next_json(&mut b.ws)).await {
            if v["event"] == "again" {
                delivered = true;
                break;
            }
        }
    }
    assert!(delivered, "cross-node delivery resumed after Redis came back");
    let mut ready = String::new();
    for _ in 0..50 {
        ready = raw_http(n[0].addr, "GET", "/ready", b"").await.body;
        if ready == "ready\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready, "ready\n");
}

/// A herald process (for SIGKILL).
struct Proc {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_node(redis: &Redis, tag: &str) -> Proc {
    let dir = std::env::temp_dir().join(format!("herald-cluster-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("herald.toml");
    std::fs::write(
        &cfg,
        format!(
            "host = \"127.0.0.1\"\nport = 0\n[adapter]\ndriver = \"redis\"\nurl = \"{}\"\nprefix = \"t\"\nnode_timeout = 2\n[[apps]]\nid = \"{APP_ID}\"\nkey = \"{KEY}\"\nsecret = \"{SECRET}\"\nenable_client_messages = true\n",
            redis.url()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut reader = std::io::BufReader::new(stdout);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    // keep draining the banner so the pipe stays open
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let addr = line.trim().rsplit("http://").next().unwrap().parse().expect(&line);
    Proc { child, addr }
}

#[tokio::test]
async fn killed_node_members_are_removed_within_the_bound() {
    let redis = Redis::start();
    let n = nodes(&redis, 1).await;
    let mut watcher = n[0].client().await;
    watcher.subscribe_presence("presence-crash", r#"{"user_id":"w"}"#).await;

    let mut victim = spawn_node(&redis, "victim");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let url = format!("ws://{}/app/{KEY}?protocol=7", victim.addr);
    let mut ghost = Client::connect_established(&url).await;
    ghost.subscribe_presence("presence-crash", r#"{"user_id":"ghost"}"#).await;
    let added = watcher.recv().await;
    assert_eq!(added["event"], "pusher_internal:member_added");

    let killed_at = std::time::Instant::now();
    victim.child.kill().unwrap(); // SIGKILL
    let removed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let v = next_json(&mut watcher.ws).await.unwrap();
            if v["event"] == "pusher_internal:member_removed" {
                return v;
            }
        }
    })
    .await
    .expect("member_removed within 15 s");
    assert_eq!(data_of(&removed)["user_id"], "ghost");
    assert!(killed_at.elapsed() < Duration::from_secs(15));
    let users = n[0].api().get("/apps/app-id/channels/presence-crash/users", &[]).await.json();
    assert_eq!(users, json!({"users": [{"id": "w"}]}));
}

#[tokio::test]
async fn graceful_leave_drains_with_4200_and_members_do_not_flap() {
    let redis = Redis::start();
    let mut cfg = node_config(&redis);
    cfg.shutdown_grace = 5;
    cfg.shutdown_drain_window_ms = 500;
    let a_node = start_with(cfg.clone()).await;
    let b_node = start_with(cfg).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut watcher = a_node.client().await;
    watcher.subscribe_presence("presence-drain", r#"{"user_id":"w"}"#).await;
    let mut leaving = b_node.client().await;
    leaving.subscribe_presence("presence-drain", r#"{"user_id":"mover"}"#).await;
    assert_eq!(watcher.recv().await["event"], "pusher_internal:member_added");

    let shutdown = tokio::spawn(b_node.server.shutdown());
    // node B closes its client with 4200 (pusher-js reconnects at once)...
    let err = leaving.recv().await;
    assert_eq!(err["data"]["code"], 4200);
    assert_eq!(leaving.closed().await.code, 4200);
    // ...which reconnects to node A and rejoins
    let mut back = a_node.client().await;
    let ok = back.subscribe_presence("presence-drain", r#"{"user_id":"mover"}"#).await;
    assert_eq!(data_of(&ok)["presence"]["count"], 2);
    shutdown.await.unwrap();
    // the watcher never saw the mover leave and come back
    watcher.expect_silence().await;
    wait_users(&a_node, "presence-drain", json!({"users": [{"id": "mover"}, {"id": "w"}]})).await;
}
