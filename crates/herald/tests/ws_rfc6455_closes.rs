//! WebSocket framing errors end the connection the way RFC 6455 7.4.1 says: with a close frame
//! carrying 1002 (protocol error) or 1007 (invalid UTF-8) before the TCP close, so clients see
//! the reason rather than 1006; and a client's own close frame is answered before the socket
//! is dropped. A client whose stream simply ends (no close frame) gets nothing: it is gone.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use support::*;

async fn established(srv: &TestServer) -> RawWs {
    let mut raw = RawWs::connect(srv.addr, &format!("/app/{KEY}?protocol=7")).await;
    assert_eq!(raw.read_frame().await.unwrap().json()["event"], "pusher:connection_established");
    raw
}

#[tokio::test]
async fn invalid_utf8_text_closes_1007() {
    let srv = start().await;
    let mut raw = established(&srv).await;
    raw.send_frame(RawFrame::TEXT, &[0xff, 0xfe, 0xfd, b'{']).await;
    assert_eq!(raw.close_code().await, Some(1007));
    assert!(eventually(WAIT, || srv.server.hub().connection_count() == 0).await);
}

#[tokio::test]
async fn unmasked_client_frame_closes_1002() {
    let srv = start().await;
    let mut raw = established(&srv).await;
    // FIN + text, no mask bit, 2-byte payload.
    raw.send_bytes(&[0x81, 0x02, b'{', b'}']).await;
    assert_eq!(raw.close_code().await, Some(1002));
}

#[tokio::test]
async fn reserved_opcode_closes_1002() {
    let srv = start().await;
    let mut raw = established(&srv).await;
    raw.send_frame(0x3, b"x").await;
    assert_eq!(raw.close_code().await, Some(1002));
}

#[tokio::test]
async fn client_close_is_answered_with_its_code() {
    let srv = start().await;
    let mut raw = established(&srv).await;
    raw.send_frame(RawFrame::CLOSE, &1000u16.to_be_bytes()).await;
    assert_eq!(raw.close_code().await, Some(1000));
    assert!(eventually(WAIT, || srv.server.hub().connection_count() == 0).await);
}

#[tokio::test]
async fn client_close_with_a_code_it_may_not_send_is_answered_1002() {
    let srv = start().await;
    let mut raw = established(&srv).await;
    // 1005 is reserved: it must never appear in a close frame.
    raw.send_frame(RawFrame::CLOSE, &1005u16.to_be_bytes()).await;
    assert_eq!(raw.close_code().await, Some(1002));
}

#[tokio::test]
async fn a_client_that_ends_its_stream_without_a_close_frame_is_not_answered_or_counted_as_1002() {
    use tokio::io::AsyncWriteExt;
    let srv = start().await;
    let mut raw = established(&srv).await;
    // Half-close: the server sees EOF without a close frame, and could still write to us.
    raw.stream.shutdown().await.unwrap();
    assert_eq!(raw.close_code().await, None, "the peer is gone: no close frame is sent to it");
    assert!(eventually(WAIT, || srv.server.hub().connection_count() == 0).await);
    assert_eq!(metric(srv.addr, r#"herald_server_closes_total{code="1002"}"#).await, 0.0);
}
