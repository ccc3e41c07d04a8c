//! Fixtures for the cluster_* tests: a private `redis-server` (or a three-shard Redis Cluster)
//! on a free port, never a shared one, killed on drop; and herald nodes configured to share it
//! with short timeouts.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use herald::cluster::ClusterConfig;
use herald::config::adapter::AdapterConfig;

use super::{start_with, test_config, TestServer};

/// A private redis-server, killed on drop.
pub(crate) struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    /// A redis-server on a port that was free a moment ago. Another test's listener can take
    /// that port before redis-server binds it (redis-server then exits); so a start counts only
    /// once the port answers PING with PONG from our child, and otherwise retries on a new port.
    pub(crate) fn start() -> Redis {
        for _ in 0..10 {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut r = Redis { port, child: None };
            if r.try_spawn() {
                return r;
            }
        }
        panic!("redis-server did not start on any of 10 free ports");
    }
    /// Starts redis-server again on the same port (after `kill`).
    pub(crate) fn spawn(&mut self) {
        assert!(self.try_spawn(), "redis-server did not start again on port {}", self.port);
    }
    /// Spawns redis-server on `self.port`; true once it answers PING there.
    fn try_spawn(&mut self) -> bool {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        for _ in 0..250 {
            if child.try_wait().ok().flatten().is_some() {
                return false; // it could not bind the port: someone else has it
            }
            if answers_ping(self.port) {
                // A PONG from another test's redis-server on the same port: ours exits at once
                // (it could not bind), well within this grace period.
                std::thread::sleep(Duration::from_millis(100));
                if child.try_wait().ok().flatten().is_some() {
                    return false;
                }
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// Whether a Redis server answers `PING` on `port` (not just any listener).
fn answers_ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn node_config(redis: &Redis) -> herald::config::Config {
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
pub(crate) async fn wait_users(node: &TestServer, channel: &str, want: serde_json::Value) {
    let path = format!("/apps/app-id/channels/{channel}/users");
    for _ in 0..100 {
        if node.api().get(&path, &[]).await.json() == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cluster state never showed {want}");
}

pub(crate) async fn nodes(redis: &Redis, n: usize) -> Vec<TestServer> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(start_with(node_config(redis)).await);
    }
    // let the clients connect
    tokio::time::sleep(Duration::from_millis(300)).await;
    out
}

/// A three-shard Redis Cluster of private redis-server processes.
pub(crate) struct RedisCluster {
    ports: Vec<u16>,
    children: Vec<Child>,
    dir: std::path::PathBuf,
}

impl RedisCluster {
    pub(crate) fn start() -> RedisCluster {
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

    pub(crate) fn url(&self) -> String {
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
