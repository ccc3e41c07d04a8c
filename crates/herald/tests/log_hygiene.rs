//! Log hygiene against the real binary: text a client controls (here the app key in the
//! WebSocket URL, percent-encoding a newline) is escaped in human logs, so a client cannot
//! forge a log line even with `log_level = "debug"`.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_text_cannot_forge_a_log_line() {
    let herald = HeraldProcess::start(&["--host", "127.0.0.1", "--port", "0", "--log-level", "debug"]);
    let addr = herald.addr;

    let url = format!("ws://{addr}/app/evil%0AFORGED%20ERROR%20line?protocol=7&client=js&version=8.4.0");
    let mut ws = Client::connect(&url).await;
    let closed = closed(&mut ws).await;
    assert_eq!(closed.code, 4001, "{}", closed.reason);

    let refused = |l: &String| l.contains("connection refused");
    assert!(eventually(WAIT, || herald.log().iter().any(refused)).await, "{:?}", herald.log());
    herald.stop();
    let lines = herald.log();
    let line = lines.iter().find(|l| refused(l)).unwrap();
    assert!(line.contains(r"evil\nFORGED ERROR line"), "escaped in place: {line}");
    assert!(!lines.iter().any(|l| l.starts_with("FORGED")), "a forged line: {lines:?}");
    assert!(!lines.iter().any(|l| l.contains('\u{1b}')), "no terminal colours in a piped log: {line}");
}
