//! Reloading the `[tls]` certificate/key pair without dropping connections: in process
//! (`RunningServer::reload`) and through SIGHUP to the binary. A new handshake sees the new
//! certificate; an open `wss://` connection stays open and keeps receiving; a bad new pair
//! keeps the old one, is reported naming the key and is counted.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use herald::config::Config;
use herald::TlsReload;
use serde_json::json;
use support::*;

fn tls_config(files: &TlsFiles) -> Config {
    Config { tls: Some(files.config()), metrics_port: Some(0), ..test_config() }
}

async fn reloads(srv: &TestServer, result: &str) -> f64 {
    let addr = srv.server.metrics_addr().expect("metrics listener");
    metric(addr, &format!("herald_tls_reloads_total{{result=\"{result}\"}}")).await
}

#[tokio::test]
async fn reload_serves_the_new_certificate_to_new_handshakes_and_keeps_open_connections() {
    let ca = TestCa::new();
    let files = TlsFiles::new(&ca.leaf(1001));
    let srv = start_with(tls_config(&files)).await;
    let mut open = wss_client(srv.addr, &ca).await;
    open.subscribe("renewals").await;
    assert_eq!(served_serial(srv.addr, &ca).await, 1001);

    let renewed = ca.leaf(2002);
    files.write(&renewed.cert_pem, &renewed.key_pem);
    match srv.server.reload_tls() {
        // 2002 = 0x07d2, as the reload's log line shows it.
        TlsReload::Reloaded { serial } => assert!(serial.ends_with("07:d2"), "{serial}"),
        other => panic!("expected a reload, got {other:?}"),
    }

    assert_eq!(served_serial(srv.addr, &ca).await, 2002);
    // The connection opened under the old certificate is still there and still receives.
    let resp = https_trigger(&srv.api(), &ca, json!({"name": "after", "channel": "renewals", "data": "{}"})).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(open.recv_event("after").await["channel"], "renewals");
    open.assert_alive().await;
    assert_eq!(reloads(&srv, "ok").await, 1.0);
    assert_eq!(reloads(&srv, "error").await, 0.0);
}

#[tokio::test]
async fn reload_with_a_key_that_does_not_match_keeps_the_old_pair_and_counts_the_error() {
    let ca = TestCa::new();
    let old = ca.leaf(7);
    let files = TlsFiles::new(&old);
    let srv = start_with(tls_config(&files)).await;

    let other = ca.leaf(8);
    files.write(&other.cert_pem, &old.key_pem);
    match srv.server.reload_tls() {
        TlsReload::Kept { error } => assert!(error.starts_with("tls.key_file: "), "{error}"),
        other => panic!("expected the old pair kept, got {other:?}"),
    }
    assert_eq!(served_serial(srv.addr, &ca).await, 7);
    assert_eq!(reloads(&srv, "error").await, 1.0);
    assert_eq!(reloads(&srv, "ok").await, 0.0);

    // A missing file is the same: kept, naming the key.
    std::fs::remove_file(&files.cert).unwrap();
    match srv.server.reload_tls() {
        TlsReload::Kept { error } => assert!(error.starts_with("tls.cert_file: cannot read"), "{error}"),
        other => panic!("expected the old pair kept, got {other:?}"),
    }
    wss_client(srv.addr, &ca).await.assert_alive().await;
    assert_eq!(reloads(&srv, "error").await, 2.0);
}

#[tokio::test]
async fn reload_without_tls_has_nothing_to_do() {
    let srv = start().await;
    assert_eq!(srv.server.reload_tls(), TlsReload::NotConfigured);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_makes_the_binary_serve_the_renewed_certificate_and_keep_its_connections() {
    let ca = TestCa::new();
    let files = TlsFiles::new(&ca.leaf(31));
    let data = temp_data_dir("tls-sighup");
    let (cert, key) = (files.cert.to_str().unwrap(), files.key.to_str().unwrap());
    let herald = HeraldProcess::start(&[
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        data.to_str().unwrap(),
        "--tls-cert-file",
        cert,
        "--tls-key-file",
        key,
        "--app-id",
        APP_ID,
        "--app-key",
        KEY,
        "--app-secret",
        SECRET,
    ]);
    let mut open = wss_client(herald.addr, &ca).await;
    open.subscribe("hup").await;
    assert_eq!(served_serial(herald.addr, &ca).await, 31);

    let renewed = ca.leaf(32);
    files.write(&renewed.cert_pem, &renewed.key_pem);
    // SAFETY: kill(2) on the pid of a child this test started and still owns.
    assert_eq!(unsafe { libc::kill(herald.pid() as libc::pid_t, libc::SIGHUP) }, 0);
    let reloaded = eventually(WAIT, || herald.log().iter().any(|l| l.contains("certificate reloaded"))).await;
    assert!(reloaded, "no reload line in {:#?}", herald.log());

    assert_eq!(served_serial(herald.addr, &ca).await, 32);
    let api = Api { addr: herald.addr, app_id: APP_ID.into(), key: KEY.into(), secret: SECRET.into() };
    let resp = https_trigger(&api, &ca, json!({"name": "still-here", "channel": "hup", "data": "{}"})).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(open.recv_event("still-here").await["channel"], "hup");
    // SIGHUP did not stop it: it still accepts.
    wss_client(herald.addr, &ca).await.assert_alive().await;
    herald.stop();
    let _ = std::fs::remove_dir_all(&data);
}
