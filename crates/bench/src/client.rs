//! A minimal Pusher WebSocket client over loopback: TCP connect (optionally from a chosen
//! 127.0.0.x source address, and under TLS with `--tls-ca`), WebSocket handshake with small buffers (so 20k clients fit in a
//! few hundred MB), `pusher:connection_established`, subscribe/unsubscribe, answering
//! `pusher:ping`, and decoding frames and the benchmark payload carried in event data.

use std::borrow::Cow;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use crate::tls::{self, Stream};

/// Where the server under test listens and the app it serves.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub host: Ipv4Addr,
    pub port: u16,
    pub app_id: String,
    pub key: String,
    pub secret: String,
    /// `--tls-ca`: connect with `wss://` / `https://`, trusting this configuration's CAs.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Why a connection or subscription failed, classified for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// EMFILE/ENFILE: this process is out of file descriptors.
    FileLimit,
    /// EADDRNOTAVAIL: no ephemeral port left for this source address.
    NoPort,
    Refused,
    Timeout,
    /// The server closed, reset, or refused the handshake or subscription.
    Server(String),
    Other(String),
}

impl Failure {
    /// Short stable label used as a counter key.
    pub(crate) fn label(&self) -> String {
        match self {
            Failure::FileLimit => "file_limit(EMFILE)".into(),
            Failure::NoPort => "no_ephemeral_port(EADDRNOTAVAIL)".into(),
            Failure::Refused => "refused".into(),
            Failure::Timeout => "timeout".into(),
            Failure::Server(s) => format!("server:{s}"),
            Failure::Other(s) => format!("other:{s}"),
        }
    }

    fn from_io(e: &std::io::Error) -> Failure {
        match e.raw_os_error() {
            Some(libc::EMFILE) | Some(libc::ENFILE) => Failure::FileLimit,
            Some(libc::EADDRNOTAVAIL) => Failure::NoPort,
            Some(libc::ECONNREFUSED) => Failure::Refused,
            Some(libc::ECONNRESET) | Some(libc::EPIPE) => Failure::Server("reset".into()),
            _ => Failure::Other(e.kind().to_string()),
        }
    }

    fn from_ws(e: tungstenite::Error) -> Failure {
        match e {
            tungstenite::Error::Io(io) => Failure::from_io(&io),
            tungstenite::Error::Http(resp) => Failure::Server(format!("http {}", resp.status().as_u16())),
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
                Failure::Server("closed".into())
            }
            tungstenite::Error::Protocol(p) => Failure::Server(format!("protocol: {p}")),
            other => Failure::Other(other.to_string()),
        }
    }
}

/// One decoded server frame: event name, channel, and `data` as a string (a JSON string is
/// unwrapped; an object is kept as its JSON text).
pub(crate) struct Frame<'a> {
    pub event: Cow<'a, str>,
    pub channel: Option<Cow<'a, str>>,
    pub data: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawFrame<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow, default)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

/// Decodes a server frame; `None` for anything that is not a Pusher frame.
pub(crate) fn decode(text: &str) -> Option<Frame<'_>> {
    let raw: RawFrame<'_> = serde_json::from_str(text).ok()?;
    let data = match raw.data {
        None => None,
        Some(v) if v.get().starts_with('"') => Some(serde_json::from_str::<Cow<'_, str>>(v.get()).ok()?),
        Some(v) => Some(Cow::Borrowed(v.get())),
    };
    Some(Frame { event: raw.event, channel: raw.channel, data })
}

/// The benchmark payload carried in event data: sender index `f` (client events; 0 for the
/// HTTP publisher), per-channel (or per-sender) sequence `s`, send time `t` in ns since the Unix
/// epoch (CLOCK_REALTIME: publisher and subscribers share this machine's clock).
#[derive(Deserialize, Debug, Clone, Copy)]
pub(crate) struct Payload {
    #[serde(default)]
    pub f: u32,
    pub s: u64,
    pub t: u64,
}

/// Builds the payload JSON with `pad` bytes of padding.
pub(crate) fn payload_json(f: u32, s: u64, t: u64, pad: usize) -> String {
    if pad == 0 {
        format!(r#"{{"f":{f},"s":{s},"t":{t}}}"#)
    } else {
        format!(r#"{{"f":{f},"s":{s},"t":{t},"p":"{}"}}"#, "x".repeat(pad))
    }
}

pub(crate) fn parse_payload(data: &str) -> Option<Payload> {
    serde_json::from_str(data).ok()
}

/// CLOCK_REALTIME in ns.
pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// A connected Pusher client.
pub(crate) struct Conn {
    ws: WebSocketStream<Stream>,
    pub socket_id: String,
}

fn ws_config() -> WebSocketConfig {
    // Small buffers: tungstenite's 128 KiB default read buffer would make the load generator,
    // not the server, the memory bottleneck at 20k connections.
    WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0)
}

/// Opens a TCP connection from `source` (if given) to the target, performs the WebSocket
/// handshake on `/app/{key}` and waits for `pusher:connection_established`.
pub(crate) async fn connect(target: &Target, source: Option<Ipv4Addr>, timeout: Duration) -> Result<Conn, Failure> {
    tokio::time::timeout(timeout, connect_inner(target, source)).await.unwrap_or(Err(Failure::Timeout))
}

async fn connect_inner(target: &Target, source: Option<Ipv4Addr>) -> Result<Conn, Failure> {
    let socket = TcpSocket::new_v4().map_err(|e| Failure::from_io(&e))?;
    if let Some(ip) = source {
        // Let connect() pick the port per 4-tuple instead of reserving one per source IP at bind().
        let one: libc::c_int = 1;
        // SAFETY: valid fd and option pointer/length.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                &one as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        socket.bind(SocketAddr::V4(SocketAddrV4::new(ip, 0))).map_err(|e| Failure::from_io(&e))?;
    }
    let addr = SocketAddr::V4(SocketAddrV4::new(target.host, target.port));
    let stream = socket.connect(addr).await.map_err(|e| Failure::from_io(&e))?;
    let _ = stream.set_nodelay(true);
    let stream = tls::wrap(stream, target).await.map_err(|e| Failure::from_io(&e))?;
    let scheme = if target.tls.is_some() { "wss" } else { "ws" };
    let url = format!(
        "{scheme}://{}:{}/app/{}?protocol=7&client=js&version=8.4.0&flash=false",
        target.host, target.port, target.key
    );
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(ws_config())).await.map_err(Failure::from_ws)?;
    let mut conn = Conn { ws, socket_id: String::new() };
    let text = conn.next_text().await?;
    let frame = decode(text.as_str()).ok_or_else(|| Failure::Server("undecodable first frame".into()))?;
    if frame.event != "pusher:connection_established" {
        return Err(Failure::Server(format!("first frame {}", frame.event)));
    }
    let data = frame.data.ok_or_else(|| Failure::Server("no socket_id".into()))?;
    let v: serde_json::Value = serde_json::from_str(&data).map_err(|_| Failure::Server("bad handshake".into()))?;
    conn.socket_id = v["socket_id"].as_str().unwrap_or_default().to_string();
    Ok(conn)
}

impl Conn {
    /// Next text frame; answers `pusher:ping`, skips control frames (tungstenite answers WS
    /// pings itself). A close or error ends the connection.
    pub(crate) async fn next_text(&mut self) -> Result<tungstenite::Utf8Bytes, Failure> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    if t.as_str().contains("\"pusher:ping\"") {
                        self.send(r#"{"event":"pusher:pong","data":{}}"#.to_string()).await?;
                        continue;
                    }
                    return Ok(t);
                }
                Some(Ok(Message::Close(c))) => {
                    let code = c.map(|c| u16::from(c.code)).unwrap_or(0);
                    return Err(Failure::Server(format!("close {code}")));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(Failure::from_ws(e)),
                None => return Err(Failure::Server("closed".into())),
            }
        }
    }

    pub(crate) async fn send(&mut self, text: String) -> Result<(), Failure> {
        self.ws.send(Message::text(text)).await.map_err(Failure::from_ws)
    }

    /// Subscribes and waits for `pusher_internal:subscription_succeeded` (a `pusher:error` or
    /// `pusher:subscription_error` is a failure). Frames for other channels are skipped.
    pub(crate) async fn subscribe(&mut self, channel: &str, auth: Option<String>) -> Result<(), Failure> {
        let data = match auth {
            Some(a) => serde_json::json!({ "channel": channel, "auth": a }),
            None => serde_json::json!({ "channel": channel }),
        };
        self.send(serde_json::json!({ "event": "pusher:subscribe", "data": data }).to_string()).await?;
        loop {
            let text = self.next_text().await?;
            let Some(f) = decode(text.as_str()) else { continue };
            match f.event.as_ref() {
                "pusher_internal:subscription_succeeded" if f.channel.as_deref() == Some(channel) => return Ok(()),
                "pusher:error" | "pusher:subscription_error" => {
                    return Err(Failure::Server(format!("subscribe refused: {}", f.data.unwrap_or_default())))
                }
                _ => {}
            }
        }
    }

    pub(crate) async fn unsubscribe(&mut self, channel: &str) -> Result<(), Failure> {
        self.send(serde_json::json!({ "event": "pusher:unsubscribe", "data": { "channel": channel } }).to_string())
            .await
    }

    /// Sends a WebSocket close frame and waits briefly for the server's; then drops the socket.
    pub(crate) async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = self.ws.close(None).await;
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_string_and_object_data() {
        let f = decode(r#"{"event":"e","channel":"c","data":"{\"f\":0,\"s\":7,\"t\":9}"}"#).unwrap();
        let p = parse_payload(f.data.as_deref().unwrap()).unwrap();
        assert_eq!((p.s, p.t), (7, 9));
        let f = decode(r#"{"event":"e","channel":"c","data":{"f":3,"s":1,"t":2}}"#).unwrap();
        assert_eq!(parse_payload(f.data.as_deref().unwrap()).unwrap().f, 3);
        let p = parse_payload(&payload_json(1, 2, 3, 5)).unwrap();
        assert_eq!((p.f, p.s, p.t), (1, 2, 3));
    }
}
