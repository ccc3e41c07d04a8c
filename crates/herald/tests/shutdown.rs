//! Graceful shutdown (PROTOCOL.md 2.8, 12.1; server.rs): clients get `pusher:error` 4200 and a
//! 4200 close, `/ready` turns 503 while connections drain, new sockets are refused with 4200.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use support::*;

#[tokio::test]
async fn shutdown_sends_error_4200_then_close_4200_to_every_client() {
    let srv = start().await;
    let mut subscribed = srv.client().await;
    subscribed.subscribe("my-channel").await;
    let mut idle = srv.client().await;
    let TestServer { addr, server } = srv;
    let done = tokio::spawn(server.shutdown());

    for c in [&mut subscribed, &mut idle] {
        let err = c.recv().await;
        assert_eq!(err["event"], "pusher:error", "{err}");
        assert_eq!(err["data"]["code"], 4200, "{err}");
        assert!(err["data"]["message"].is_string());
        assert_eq!(c.closed().await.code, 4200);
    }
    tokio::time::timeout(WAIT, done).await.expect("shutdown completes").unwrap();
    // the listener is gone
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "still accepting after shutdown");
}

#[tokio::test]
async fn ready_is_200_before_and_503_while_connections_drain() {
    let srv = start().await;
    assert_eq!(raw_http(srv.addr, "GET", "/ready", b"").await.status, 200);
    assert_eq!(raw_http(srv.addr, "GET", "/up", b"").await.status, 200);
    let mut client = srv.client().await;

    // An in-process connection that never acts on its close request stands for a client
    // whose socket cannot be closed yet: it keeps the drain phase open (grace: 2 s).
    let lingering = srv.server.hub().connect(KEY, Some("7"), false).expect("admitted");
    let TestServer { addr, server } = srv;
    let done = tokio::spawn(server.shutdown());

    assert_eq!(client.recv().await["data"]["code"], 4200);
    assert_eq!(client.closed().await.code, 4200);

    let ready = raw_http(addr, "GET", "/ready", b"").await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(raw_http(addr, "GET", "/up", b"").await.status, 200);

    // new connections are refused with 4200 (admission check 1)
    let mut late = Client::connect(&format!("ws://{addr}/app/{KEY}?protocol=7")).await;
    let err = next_json(&mut late).await.unwrap();
    assert_eq!(err["event"], "pusher:error");
    assert_eq!(err["data"]["code"], 4200);
    assert_eq!(closed(&mut late).await.code, 4200);

    drop(lingering);
    tokio::time::timeout(WAIT, done).await.expect("shutdown completes").unwrap();
}

#[tokio::test]
async fn shutdown_with_no_clients_completes() {
    let srv = start().await;
    let addr = srv.addr;
    assert_eq!(raw_http(addr, "GET", "/ready", b"").await.status, 200);
    tokio::time::timeout(WAIT, srv.server.shutdown()).await.expect("shutdown completes");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn presence_members_are_cleaned_up_on_shutdown_close() {
    let srv = start().await;
    let mut a = srv.client().await;
    let mut b = srv.client().await;
    a.subscribe_presence("presence-room", r#"{"user_id":"a"}"#).await;
    b.subscribe_presence("presence-room", r#"{"user_id":"b"}"#).await;
    assert_eq!(a.recv().await["event"], "pusher_internal:member_added");
    let hub = srv.server.hub().clone();
    let done = tokio::spawn(srv.server.shutdown());
    for c in [&mut a, &mut b] {
        assert_eq!(c.closed().await.code, 4200);
    }
    tokio::time::timeout(WAIT, done).await.expect("shutdown completes").unwrap();
    assert_eq!(hub.connection_count(), 0);
    let counts = hub.namespace(APP_ID).counts("presence-room");
    assert_eq!((counts.subscription_count, counts.user_count), (0, 0), "no member or subscriber left");
}

/// The process exits as soon as `shutdown` returns, cancelling whatever tasks are left: every
/// client's 4200 close frame must already be written by then. The server runs in its own
/// runtime, dropped right after `shutdown` as a process exit would.
#[test]
fn close_frames_are_written_before_shutdown_returns() {
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let clients_rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let srv = server_rt.block_on(start());
    let addr = srv.addr;
    let mut clients = clients_rt.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..50 {
            let mut raw = RawWs::connect(addr, &format!("/app/{KEY}?protocol=7")).await;
            assert_eq!(raw.read_frame().await.unwrap().json()["event"], "pusher:connection_established");
            clients.push(raw);
        }
        clients
    });
    server_rt.block_on(srv.server.shutdown());
    drop(server_rt);
    clients_rt.block_on(async {
        for (i, raw) in clients.iter_mut().enumerate() {
            let err = tokio::time::timeout(WAIT, raw.read_frame()).await.expect("frame in time");
            let err = err.unwrap_or_else(|| panic!("client {i}: connection ended without pusher:error"));
            assert_eq!(err.json()["data"]["code"], 4200, "client {i}");
            let close = tokio::time::timeout(WAIT, raw.read_frame()).await.expect("frame in time");
            let close = close.unwrap_or_else(|| panic!("client {i}: connection ended without a close frame"));
            assert_eq!(close.close_code(), Some(4200), "client {i}");
        }
    });
}
