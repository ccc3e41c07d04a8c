//! Log hygiene against the real binary: text a client controls (here the app key in the
//! WebSocket URL, percent-encoding a newline) is escaped in human logs, so a client cannot
//! forge a log line even with `log_level = "debug"`.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_text_cannot_forge_a_log_line() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["--host", "127.0.0.1", "--port", "0", "--log-level", "debug"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn herald");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::task::block_in_place(|| stdout.next().expect("a first line").expect("stdout"));
    let addr = first.strip_prefix("herald listening on http://").expect("listening line").to_owned();
    std::thread::spawn(move || for _ in stdout {});
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = log.clone();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });

    let url = format!("ws://{addr}/app/evil%0AFORGED%20ERROR%20line?protocol=7&client=js&version=8.4.0");
    let mut ws = Client::connect(&url).await;
    let closed = closed(&mut ws).await;
    assert_eq!(closed.code, 4001, "{}", closed.reason);

    let refused = |l: &String| l.contains("connection refused");
    assert!(eventually(WAIT, || log.lock().unwrap().iter().any(refused)).await, "{:?}", log.lock().unwrap());
    child.kill().unwrap();
    child.wait().unwrap();
    let lines = log.lock().unwrap();
    let line = lines.iter().find(|l| refused(l)).unwrap();
    assert!(line.contains(r"evil\nFORGED ERROR line"), "escaped in place: {line}");
    assert!(!lines.iter().any(|l| l.starts_with("FORGED")), "a forged line: {lines:?}");
    assert!(!lines.iter().any(|l| l.contains('\u{1b}')), "no terminal colours in a piped log: {line}");
}
