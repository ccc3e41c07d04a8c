//! Several herald nodes sharing one Redis (issue: cluster). Each test starts its own
//! `redis-server` on a free port (never the shared one) and in-process nodes, or real
//! processes where a node must be SIGKILLed.

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use herald::cluster::ClusterConfig;
use herald::config::adapter::AdapterConfig;
use serde_json::json;
use support::*;

/// A private redis-server, killed on drop.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut r = Redis { port, child: None };
        r.spawn();
        r
    }
    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start");
    }
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn node_config(redis: &Redis) -> herald::config::Config {
    let mut cfg = test_config();
    cfg.adapter = AdapterConfig::Redis(ClusterConfig {
        url: redis.url(),
        prefix: "t".into(),
        node_timeout: Duration::from_secs(2),
        heartbeat: Duration::from_millis(400),
        leave_grace: Duration::from_millis(500),
        removal_delay: Duration::from_millis(500),
    });
    cfg
}

/// Waits until `GET /channels/{channel}/users` on `node` answers `want`.
async fn wait_users(node: &TestServer, channel: &str, want: serde_json::Value) {
    let path = format!("/apps/app-id/channels/{channel}/users");
    for _ in 0..100 {
        if node.api().get(&path, &[]).await.json() == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cluster state never showed {want}");
}

async fn nodes(redis: &Redis, n: usize) -> Vec<TestServer> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(start_with(node_config(redis)).await);
    }
    // let the clients connect
    tokio::time::sleep(Duration::from_millis(300)).await;
    out
}

#[tokio::test]
async fn event_triggered_on_one_node_reaches_subscribers_on_another() {
    let redis = Redis::start();
    let n = nodes(&redis, 2).await;
    let mut a = n[0].client().await;
    assert_eq!(a.subscribe("orders").await["event"], "pusher_internal:subscription_succeeded");
    let r = n[1].api().trigger(json!({"name": "created", "channel": "orders", "data": "{\"id\":1}"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(a.recv().await, json!({"event": "created", "channel": "orders", "data": "{\"id\":1}"}));
}

#[tokio::test]
async fn client_events_cross_nodes_and_socket_id_exclusion_holds() {
    let redis = Redis::start();
    let n = nodes(&redis, 2).await;
    let mut a = n[0].client().await;
    let mut b = n[1].client().await;
    a.subscribe_private("private-chat").await;
    b.subscribe_private("private-chat").await;
    a.send(json!({"event": "client-hi", "channel": "private-chat", "data": {"x": 1}})).await;
    assert_eq!(b.recv().await, json!({"event": "client-hi", "channel": "private-chat", "data": "{\"x\":1}"}));
    a.expect_silence().await;
    // exclusion: triggered on node B excluding a's socket (which lives on node A)
    let r = n[1]
        .api()
        .trigger(json!({"name": "e", "channel": "private-chat", "data": "d", "socket_id": a.socket_id}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(b.recv().await["event"], "e");
    a.expect_silence().await;
}

#[tokio::test]
async fn node_without_subscribers_receives_none_of_a_channels_messages() {
    let redis = Redis::start();
    let n = nodes(&redis, 3).await;
    let mut a = n[0].client().await;
    a.subscribe("busy").await;
    let before = metric(n[2].addr, "herald_cluster_messages_received_total").await;
    for i in 0..20 {
        n[1].api().trigger(json!({"name": "e", "channel": "busy", "data": i.to_string()})).await;
    }
    for _ in 0..20 {
        assert_eq!(a.recv().await["event"], "e");
    }
    let after = metric(n[2].addr, "herald_cluster_messages_received_total").await;
    assert_eq!(after, before, "node C has no subscriber and must receive nothing");
    assert_eq!(metric(n[0].addr, "herald_cluster_unneeded_messages_total").await, 0.0);
}

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
async fn cache_published_on_one_node_is_replayed_on_another() {
    let redis = Redis::start();
    let n = nodes(&redis, 2).await;
    let r = n[1].api().trigger(json!({"name": "price", "channel": "cache-btc", "data": "{\"usd\":7}"})).await;
    assert_eq!(r.status, 200);
    let mut a = n[0].client().await;
    assert_eq!(a.subscribe("cache-btc").await["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(a.recv().await, json!({"event": "price", "channel": "cache-btc", "data": "{\"usd\":7}"}));
    // and a later publish on node B updates node A's cache for its next subscriber
    n[1].api().trigger(json!({"name": "price", "channel": "cache-btc", "data": "{\"usd\":8}"})).await;
    assert_eq!(a.recv().await["data"], "{\"usd\":8}");
    let mut a2 = n[0].client().await;
    a2.subscribe("cache-btc").await;
    assert_eq!(a2.recv().await["data"], "{\"usd\":8}");
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

/// A three-shard Redis Cluster of private redis-server processes.
struct RedisCluster {
    ports: Vec<u16>,
    children: Vec<Child>,
    dir: std::path::PathBuf,
}

impl RedisCluster {
    fn start() -> RedisCluster {
        let dir = std::env::temp_dir().join(format!("herald-redis-cluster-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let ports: Vec<u16> =
            (0..3).map(|_| TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()).collect();
        let mut children = Vec::new();
        for port in &ports {
            let node_dir = dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).unwrap();
            children.push(
                Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--cluster-enabled", "yes"])
                    .args(["--cluster-config-file", "nodes.conf", "--save", "", "--appendonly", "no"])
                    .arg("--dir")
                    .arg(&node_dir)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("redis-server"),
            );
        }
        for port in &ports {
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli");
        assert!(status.success(), "redis-cli --cluster create failed");
        // wait until every node reports the cluster ok
        for port in &ports {
            for _ in 0..200 {
                let out =
                    Command::new("redis-cli").args(["-p", &port.to_string(), "cluster", "info"]).output().unwrap();
                if String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        RedisCluster { ports, children, dir }
    }

    fn url(&self) -> String {
        let others: Vec<String> = self.ports[1..].iter().map(|p| format!("node=127.0.0.1:{p}")).collect();
        format!("redis-cluster://127.0.0.1:{}?{}", self.ports[0], others.join("&"))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64
}

#[tokio::test]
async fn redis_cluster_with_sharded_pubsub_carries_events_and_presence() {
    let rc = RedisCluster::start();
    let mut cfg = test_config();
    cfg.adapter = AdapterConfig::Redis(ClusterConfig {
        url: rc.url(),
        prefix: "rc".into(),
        node_timeout: Duration::from_secs(2),
        heartbeat: Duration::from_millis(400),
        leave_grace: Duration::from_millis(500),
        removal_delay: Duration::from_millis(500),
    });
    let a_node = start_with(cfg.clone()).await;
    let b_node = start_with(cfg).await;
    tokio::time::sleep(Duration::from_millis(800)).await;

    // events on many channels (spread over the shards) cross nodes
    let mut a = a_node.client().await;
    let channels: Vec<String> = (0..6).map(|i| format!("shard-test-{i}")).collect();
    for ch in &channels {
        assert_eq!(a.subscribe(ch).await["event"], "pusher_internal:subscription_succeeded");
    }
    for ch in &channels {
        let r = b_node.api().trigger(json!({"name": "e", "channel": ch, "data": ch})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(a.recv().await, json!({"event": "e", "channel": ch, "data": ch}));
    }

    // presence across nodes, answered by either node's HTTP API
    let mut p1 = a_node.client().await;
    p1.subscribe_presence("presence-rc", r#"{"user_id":"1"}"#).await;
    // node A registers its member asynchronously; once the cluster state shows it, a join on
    // node B lists it (a join racing ahead would get it as member_added instead)
    wait_users(&b_node, "presence-rc", json!({"users": [{"id": "1"}]})).await;
    let mut p2 = b_node.client().await;
    let ok = p2.subscribe_presence("presence-rc", r#"{"user_id":"2"}"#).await;
    assert_eq!(data_of(&ok)["presence"]["count"], 2);
    assert_eq!(p1.recv().await["event"], "pusher_internal:member_added");
    wait_users(&a_node, "presence-rc", json!({"users": [{"id": "1"}, {"id": "2"}]})).await;
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
