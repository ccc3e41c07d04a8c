//! File-descriptor exhaustion against the real binary under a low `RLIMIT_NOFILE`
//! (`ulimit -n` in a shell that then execs herald): with clients holding idle sockets past the
//! limit, `/up` and `/metrics` keep answering on the metrics port (the main listener pauses at
//! `fd_reserve`), and with no reserve at all an `accept()` failing with EMFILE is backed off
//! and counted, never fatal, and the main port serves again once the sockets go.
//!
//! Sizes default to a 256-descriptor limit and 300 sockets; `FD_TEST_NOFILE` and
//! `FD_TEST_SOCKETS` override them for the full-size run recorded in docs/OPERATIONS.md.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn size(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// herald under `ulimit -n nofile` with `env`; returns the child, the main and the ops address.
fn spawn(nofile: usize, env: &[(&str, &str)]) -> (Child, SocketAddr, SocketAddr) {
    let script = format!("ulimit -n {nofile} && exec \"$0\" \"$@\"");
    let mut child = Command::new("sh")
        .args(["-c", &script, env!("CARGO_BIN_EXE_herald"), "--host", "127.0.0.1", "--port", "0"])
        .env("HERALD_METRICS_PORT", "0")
        .env("HERALD_LOG_LEVEL", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn herald");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().expect("banner line").expect("stdout");
    let first = next();
    let main = first.strip_prefix("herald listening on http://").expect("listening line").parse().unwrap();
    let ops = loop {
        let line = next();
        if let Some(rest) = line.trim().strip_prefix("metrics listener on http://") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, main, ops)
}

/// `GET path` over a fresh connection: the status, or `None` without an answer within `WAIT`.
async fn try_get(addr: SocketAddr, path: &str) -> Option<u16> {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        String::from_utf8_lossy(&buf).split(' ').nth(1)?.parse().ok()
    };
    tokio::time::timeout(WAIT, exchange).await.ok().flatten()
}

/// Opens `n` connections to `addr` that never send a byte.
async fn idle_sockets(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(TcpStream::connect(addr).await.expect("connect (the accept queue takes the rest)"));
    }
    held
}

async fn polled_metric(addr: SocketAddr, name: &str, at_least: f64) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if metric(addr, name).await >= at_least {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_and_metrics_answer_on_the_metrics_port_while_idle_sockets_take_every_other_fd() {
    let (nofile, sockets) = (size("FD_TEST_NOFILE", 256), size("FD_TEST_SOCKETS", 300));
    // Header and keep-alive timeouts far beyond the test: the idle sockets stay held.
    let hold = [("HERALD_HTTP_HEADER_READ_TIMEOUT", "300"), ("HERALD_HTTP_KEEP_ALIVE_TIMEOUT", "300")];
    let (mut child, main, ops) = spawn(nofile, &hold);
    let held = idle_sockets(main, sockets).await;
    assert!(polled_metric(ops, "herald_accept_paused_total", 1.0).await, "the main listener paused at the reserve");

    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..100 {
        let t = Instant::now();
        assert_eq!(try_get(ops, "/up").await, Some(200), "/up on the metrics port");
        slowest = slowest.max(t.elapsed());
    }
    let total = started.elapsed();
    assert_eq!(try_get(ops, "/metrics").await, Some(200), "/metrics on the metrics port");
    assert_eq!(try_get(ops, "/ready").await, Some(200), "/ready on the metrics port");
    eprintln!(
        "nofile {nofile}, {sockets} idle sockets: 100 x /up on the metrics port in {total:?} (slowest {slowest:?})"
    );

    drop(held);
    let mut served = false;
    for _ in 0..50 {
        if try_get(main, "/up").await == Some(200) {
            served = true;
            break;
        }
    }
    assert!(served, "the main port serves again once the idle sockets are gone");
    assert!(child.try_wait().unwrap().is_none(), "herald is still running");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_failing_with_emfile_is_backed_off_counted_and_survived() {
    let nofile = 128;
    let (mut child, main, ops) = spawn(nofile, &[("HERALD_FD_RESERVE", "0")]);
    let held = idle_sockets(main, nofile + 50).await;
    // Nothing is left for the metrics port either; the count is read once the sockets are gone.
    let mut exhausted = false;
    for _ in 0..100 {
        if try_get(main, "/up").await.is_none() {
            exhausted = true;
            break;
        }
    }
    assert!(exhausted, "every descriptor is taken");
    drop(held);
    let mut served = false;
    for _ in 0..50 {
        if try_get(main, "/up").await == Some(200) {
            served = true;
            break;
        }
    }
    assert!(served, "the main port serves again once the idle sockets are gone");
    assert!(metric(ops, "herald_accept_errors_total").await >= 1.0, "EMFILE was counted");
    assert!(child.try_wait().unwrap().is_none(), "herald is still running");
    child.kill().unwrap();
    child.wait().unwrap();
}
