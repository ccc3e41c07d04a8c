//! Bad and hostile input over real sockets (PROTOCOL.md 3.1, 2.1, 13.1): malformed frames get a
//! `pusher:error` and the connection stays open; oversized frames close 1009; garbage on the TCP
//! port and slow consumers never take the server down.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

async fn assert_null_error(c: &mut Client) {
    let err = c.recv_error().await;
    assert_eq!(err["code"], Value::Null, "{err}");
    assert!(err["message"].is_string(), "{err}");
}

#[tokio::test]
async fn malformed_json_gets_error_and_connection_stays_open() {
    let srv = start().await;
    let mut c = srv.client().await;
    for junk in ["{", "not json", r#"{"event":"pusher:ping""#, ""] {
        c.send_raw(junk).await;
        assert_null_error(&mut c).await;
    }
    c.assert_alive().await;
}

#[tokio::test]
async fn json_that_is_not_an_object_gets_error() {
    let srv = start().await;
    let mut c = srv.client().await;
    for junk in [r#"["pusher:ping"]"#, "42", "null", r#""pusher:ping""#, "true"] {
        c.send_raw(junk).await;
        assert_null_error(&mut c).await;
    }
    c.assert_alive().await;
}

#[tokio::test]
async fn frame_without_event_gets_error() {
    let srv = start().await;
    let mut c = srv.client().await;
    for junk in [r#"{"data":{}}"#, r#"{"event":5}"#, r#"{"event":""}"#] {
        c.send_raw(junk).await;
        assert_null_error(&mut c).await;
    }
    c.assert_alive().await;
}

#[tokio::test]
async fn unknown_non_client_event_is_unsupported() {
    let srv = start().await;
    let mut c = srv.client().await;
    c.send(json!({"event": "foo", "data": {}})).await;
    assert_eq!(
        c.recv().await,
        json!({"event": "pusher:error", "data": {"code": null, "message": "Unsupported event: foo"}})
    );
    c.assert_alive().await;
}

#[tokio::test]
async fn unknown_pusher_event_is_ignored() {
    let srv = start().await;
    let mut c = srv.client().await;
    c.send(json!({"event": "pusher:whatever", "data": {"x": 1}})).await;
    c.send(json!({"event": "pusher_internal:subscription_succeeded", "channel": "x", "data": "{}"})).await;
    c.expect_silence().await;
    c.assert_alive().await;
}

#[tokio::test]
async fn binary_frame_is_ignored() {
    let srv = start().await;
    let mut c = srv.client().await;
    c.ws.send(Message::binary(br#"{"event":"pusher:ping","data":{}}"#.to_vec())).await.unwrap();
    c.ws.send(Message::binary(vec![0xff, 0x00, 0x13])).await.unwrap();
    c.expect_silence().await;
    c.assert_alive().await;
    assert_eq!(c.subscribe("my-channel").await["event"], "pusher_internal:subscription_succeeded");
}

#[tokio::test]
async fn ws_ping_frame_is_answered_with_pong() {
    let srv = start().await;
    let mut raw = RawWs::connect(srv.addr, &format!("/app/{KEY}?protocol=7")).await;
    assert_eq!(raw.read_frame().await.unwrap().json()["event"], "pusher:connection_established");
    raw.send_frame(RawFrame::PING, b"hello").await;
    assert_eq!(raw.read_frame().await.unwrap(), RawFrame { opcode: RawFrame::PONG, payload: b"hello".to_vec() });
}

#[tokio::test]
async fn text_frame_over_max_ws_message_kb_closes_1009() {
    let mut config = test_config();
    config.max_ws_message_kb = 1;
    let srv = start_with(config).await;
    let mut c = srv.client().await;
    // just under the limit is processed normally
    let padding = "x".repeat(900);
    c.send_raw(&format!(r#"{{"event":"pusher:ping","data":{{}},"pad":"{padding}"}}"#)).await;
    assert_eq!(c.recv().await["event"], "pusher:pong");

    let big = format!(r#"{{"event":"pusher:ping","pad":"{}"}}"#, "x".repeat(2048));
    c.send_raw(&big).await;
    assert_eq!(c.closed().await.code, 1009);
    assert!(eventually(WAIT, || srv.server.hub().connection_count() == 0).await);
    srv.client().await.assert_alive().await;
}

#[tokio::test]
async fn invalid_utf8_text_frame_ends_only_that_connection() {
    let srv = start().await;
    let mut bystander = srv.client().await;
    let mut raw = RawWs::connect(srv.addr, &format!("/app/{KEY}?protocol=7")).await;
    assert_eq!(raw.read_frame().await.unwrap().json()["event"], "pusher:connection_established");
    raw.send_frame(RawFrame::TEXT, &[0xff, 0xfe, 0xfd, b'{']).await;
    // The server ends the connection: with a close frame or by dropping the socket.
    loop {
        match raw.read_frame().await {
            None => break,
            Some(f) if f.opcode == RawFrame::CLOSE => break,
            Some(f) if f.opcode == RawFrame::TEXT => assert_eq!(f.json()["event"], "pusher:error"),
            Some(f) => panic!("unexpected frame {f:?}"),
        }
    }
    assert!(eventually(WAIT, || srv.server.hub().connection_count() == 1).await);
    bystander.assert_alive().await;
    srv.client().await.assert_alive().await;
}

#[tokio::test]
async fn garbage_bytes_before_http_do_not_affect_other_clients() {
    let srv = start().await;
    let mut bystander = srv.client().await;
    for garbage in [
        &b"\xff\xfe\x00\x01garbage\r\n\r\n"[..],
        b"GET / HTTP/9.9\x00\xff\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ] {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(garbage).await.unwrap();
        let mut buf = Vec::new();
        // the server answers (HTTP 400) or closes; either way the read ends
        let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await.expect("server ends the garbage connection");
        if !buf.is_empty() {
            let head = String::from_utf8_lossy(&buf);
            assert!(head.starts_with("HTTP/1.1 4"), "unexpected answer: {head}");
        }
    }
    bystander.assert_alive().await;
    srv.client().await.assert_alive().await;
    assert_eq!(raw_http(srv.addr, "GET", "/up", b"").await.status, 200);
}

#[tokio::test]
async fn plain_http_get_on_app_path_is_rejected_not_crashed() {
    let srv = start().await;
    let resp = raw_http(srv.addr, "GET", &format!("/app/{KEY}?protocol=7"), b"").await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    srv.client().await.assert_alive().await;
}

#[tokio::test]
async fn flood_of_1000_malformed_frames_is_survived() {
    let srv = start().await;
    let mut c = srv.client().await;
    for i in 0..1000 {
        c.ws.feed(Message::text(format!("{{not json {i}"))).await.unwrap();
    }
    c.ws.flush().await.unwrap();
    for _ in 0..1000 {
        assert_null_error(&mut c).await;
    }
    c.assert_alive().await;
    srv.client().await.assert_alive().await;
}

#[tokio::test]
async fn slow_consumer_is_closed_4100_when_its_queue_overflows() {
    let mut config = config_with_limits(|l| l.max_event_batch_size = 2000);
    config.outbound_queue_messages = 10;
    let srv = start_with(config).await;
    let mut slow = srv.client().await;
    slow.subscribe("feed").await;
    let before = metric(srv.addr, "herald_slow_consumer_disconnects_total").await;

    // 2000 events in one request, while the client reads nothing.
    let batch: Vec<Value> =
        (0..2000).map(|i| json!({"name": "tick", "channel": "feed", "data": i.to_string()})).collect();
    let resp = srv.api().post(&format!("/apps/{APP_ID}/batch_events"), &json!({"batch": batch})).await;
    assert_eq!(resp.status, 200, "{}", resp.body);

    let err = slow.recv_event("pusher:error").await;
    assert_eq!(err["data"]["code"], 4100, "{err}");
    assert_eq!(slow.closed().await.code, 4100);
    assert!(eventually(WAIT, || srv.server.hub().connection_count() == 0).await);
    let after = metric(srv.addr, "herald_slow_consumer_disconnects_total").await;
    assert_eq!(after, before + 1.0);
    // the server keeps serving
    srv.client().await.assert_alive().await;
}

#[tokio::test]
async fn consumer_whose_socket_stops_draining_is_dropped() {
    let mut config = test_config();
    config.outbound_queue_messages = 10;
    let srv = start_with(config).await;
    let mut bystander = srv.client().await;
    // A raw client that subscribes and then never reads: the kernel buffers fill up, the
    // server's writes stall and its outbound queue overflows.
    let mut raw = RawWs::connect(srv.addr, &format!("/app/{KEY}?protocol=7")).await;
    raw.send_text(r#"{"event":"pusher:subscribe","data":{"channel":"feed"}}"#).await;
    let api = srv.api();
    let data = "x".repeat(9000);
    let mut sent = 0;
    while metric(srv.addr, "herald_slow_consumer_disconnects_total").await < 1.0 {
        assert!(sent < 10_000, "queue never overflowed after {sent} events");
        for _ in 0..50 {
            let resp = api.trigger(json!({"name": "blob", "channel": "feed", "data": data})).await;
            assert_eq!(resp.status, 200);
            sent += 1;
        }
    }
    // The stuck connection is dropped (its pending write can never complete); others are not.
    assert!(eventually(Duration::from_secs(30), || srv.server.hub().connection_count() == 1).await);
    bystander.assert_alive().await;
    drop(raw);
}
