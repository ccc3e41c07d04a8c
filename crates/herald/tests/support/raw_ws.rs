//! A minimal hand-rolled WebSocket client for tests that must control frames exactly (no
//! automatic Pong, arbitrary opcodes and sizes).

use std::net::SocketAddr;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::WAIT;

/// One frame as read by [`RawWs`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawFrame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl RawFrame {
    pub(crate) const TEXT: u8 = 1;
    pub(crate) const BINARY: u8 = 2;
    pub(crate) const CLOSE: u8 = 8;
    pub(crate) const PING: u8 = 9;
    pub(crate) const PONG: u8 = 10;

    pub(crate) fn json(&self) -> Value {
        assert_eq!(self.opcode, Self::TEXT, "not a text frame: {self:?}");
        serde_json::from_slice(&self.payload).expect("server sent valid JSON")
    }

    /// Close code of a close frame.
    pub(crate) fn close_code(&self) -> Option<u16> {
        (self.opcode == Self::CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// A minimal WebSocket client over a plain `TcpStream`: unlike tungstenite it never answers
/// anything by itself (no automatic Pong), and it can send arbitrary frames.
pub(crate) struct RawWs {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Handshake on `path_and_query`; panics unless the server answers 101.
    pub(crate) async fn connect(addr: SocketAddr, path_and_query: &str) -> RawWs {
        let mut stream = TcpStream::connect(addr).await.expect("tcp connect");
        let req = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = tokio::time::timeout(WAIT, stream.read(&mut chunk)).await.expect("handshake in time").unwrap();
            assert!(n > 0, "connection closed during handshake");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "handshake refused: {head}");
        buf.drain(..head_end);
        RawWs { stream, buf }
    }

    /// Next frame; `None` once the server closed the TCP connection. Panics on timeout.
    pub(crate) async fn read_frame(&mut self) -> Option<RawFrame> {
        loop {
            if let Some((frame, used)) = Self::parse(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = match tokio::time::timeout(WAIT, self.stream.read(&mut chunk)).await.expect("frame in time") {
                Ok(n) => n,
                Err(_) => return None,
            };
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn parse(b: &[u8]) -> Option<(RawFrame, usize)> {
        if b.len() < 2 {
            return None;
        }
        let opcode = b[0] & 0x0f;
        assert_eq!(b[1] & 0x80, 0, "server frames must not be masked");
        let (len, mut at) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize, 10),
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        if b.len() < at + len {
            return None;
        }
        let payload = b[at..at + len].to_vec();
        at += len;
        Some((RawFrame { opcode, payload }, at))
    }

    /// Sends one masked frame (FIN set).
    pub(crate) async fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        let mut out = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&out).await.expect("raw send");
    }

    /// Writes bytes as they are (frames that break the framing rules).
    pub(crate) async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("raw send");
    }

    /// Reads frames until the server's close frame and returns its code (`None`: the socket
    /// was dropped without one). A `pusher:error` text frame before it is allowed.
    pub(crate) async fn close_code(&mut self) -> Option<u16> {
        loop {
            match self.read_frame().await {
                None => return None,
                Some(f) if f.opcode == RawFrame::CLOSE => return f.close_code(),
                Some(f) if f.opcode == RawFrame::TEXT => assert_eq!(f.json()["event"], "pusher:error"),
                Some(f) => panic!("unexpected frame {f:?}"),
            }
        }
    }

    pub(crate) async fn send_text(&mut self, text: &str) {
        self.send_frame(RawFrame::TEXT, text.as_bytes()).await;
    }
}
