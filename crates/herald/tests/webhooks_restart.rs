//! Webhook durability across a crash: the real binary is SIGKILLed while deliveries are
//! pending, then restarted on the same `data_dir`; the deliveries arrive, in order.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::*;

/// Starts the binary with `config`; returns the child and the address it listens on.
fn spawn_herald(config: &std::path::Path) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn herald");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a first line").expect("stdout");
    let addr = first.strip_prefix("herald listening on http://").expect("listening line").parse().unwrap();
    // keep draining stdout so the child never blocks on a full pipe
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_pending_deliveries_delivers_after_restart() {
    let rx = WebhookReceiver::start().await;
    rx.set_status(500);
    let data_dir = temp_data_dir("sigkill");
    let config_path = data_dir.with_extension("toml");
    std::fs::write(
        &config_path,
        format!(
            r#"host = "127.0.0.1"
port = 0
data_dir = {data_dir:?}
webhook_retry_initial_ms = 50

[[apps]]
id = "{APP_ID}"
key = "{KEY}"
secret = "{SECRET}"

[[apps.webhooks]]
url = "{url}"
event_types = ["channel_occupied"]
"#,
            url = rx.url()
        ),
    )
    .unwrap();

    let (mut child, addr) = tokio::task::block_in_place(|| spawn_herald(&config_path));
    let ws = |addr: SocketAddr| format!("ws://{addr}/app/{KEY}?protocol=7&client=js&version=8.4.0");
    let mut a = Client::connect_established(&ws(addr)).await;
    for ch in ["k1", "k2", "k3"] {
        a.subscribe(ch).await;
    }
    // the deliveries are in the outbox and failing
    assert!(eventually(WAIT, || rx.hits().len() >= 2).await, "attempts were made");
    child.kill().expect("SIGKILL"); // Child::kill is SIGKILL on unix
    child.wait().unwrap();
    assert!(rx.delivered().is_empty());

    rx.set_status(200);
    let (mut child, _addr) = tokio::task::block_in_place(|| spawn_herald(&config_path));
    let events = rx.wait_events(3, Duration::from_secs(10)).await;
    assert_eq!(names(&events), ["channel_occupied:k1", "channel_occupied:k2", "channel_occupied:k3"]);
    for hit in rx.delivered() {
        assert_eq!(hit.headers.get("x-pusher-signature"), Some(&hmac_hex(SECRET, &hit.body)));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&data_dir);
    let _ = std::fs::remove_file(&config_path);
}
