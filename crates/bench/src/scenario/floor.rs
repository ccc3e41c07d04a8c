//! `send-floor`: what the kernel alone charges a server per delivered message on this machine.
//!
//! No server is involved. herald-bench opens `subscribers` loopback TCP connections to itself
//! and a plain thread plays a server with no code at all: for each publish it builds one
//! WebSocket text frame like those servers send in `fanout` (same event JSON and payload) and
//! writes it with one `send` to every socket of that channel (TCP_NODELAY, as herald and
//! sockudo set), at the `fanout` rate pattern (round-robin over channels). The thread's own CPU
//! time (`CLOCK_THREAD_CPUTIME_ID`) per delivered message is the floor any server pays here for
//! one write per message per subscriber; on loopback it includes the receiving side's TCP
//! processing, which runs in the sender's softirq, exactly as it does for the servers. A
//! server's CPU per message in `fanout` minus this floor is what the server's own code costs.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{now_ns, payload_json};
use crate::report::Report;

#[derive(Clone, Copy)]
pub(crate) struct Opts {
    pub subscribers: usize,
    pub channels: usize,
    pub rate: f64,
    pub duration: Duration,
    pub payload: usize,
}

/// What the sending thread did.
struct Sent {
    deliveries: u64,
    bytes: u64,
    cpu: Duration,
    wall: Duration,
    error: Option<String>,
}

pub(crate) async fn run(o: &Opts) -> Report {
    let mut r = Report::new(
        "send-floor",
        "kernel",
        serde_json::json!({
            "subscribers": o.subscribers, "channels": o.channels, "rate": o.rate,
            "duration_s": o.duration.as_secs_f64(), "payload_pad": o.payload,
        }),
    );
    let o = Opts { channels: o.channels.max(1), ..*o };
    let (server_side, received, readers) = match connect_pairs(o.subscribers).await {
        Ok(v) => v,
        Err(e) => {
            r.note(format!("could not open {} loopback connections: {e}", o.subscribers));
            return r;
        }
    };
    r.put("connections", server_side.len() as f64);
    let (channels, rate, duration, pad) = (o.channels, o.rate, o.duration, o.payload);
    let sender = std::thread::spawn(move || send_loop(server_side, channels, rate, duration, pad));
    let sent = match tokio::task::spawn_blocking(move || sender.join()).await {
        Ok(Ok(sent)) => sent,
        _ => {
            r.note("the sending thread panicked");
            return r;
        }
    };
    // Let the receivers read the last frames.
    let deadline = Instant::now() + Duration::from_secs(5);
    while received.load(Ordering::Relaxed) < sent.bytes && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for reader in readers {
        reader.abort();
    }
    if let Some(e) = sent.error {
        r.note(format!("send failed: {e}"));
    }
    let delivered = sent.deliveries.max(1) as f64;
    r.put("delivered", sent.deliveries as f64);
    r.put("delivered_msgs_per_s", sent.deliveries as f64 / sent.wall.as_secs_f64().max(1e-9));
    r.put("bytes_not_received", sent.bytes.saturating_sub(received.load(Ordering::Relaxed)) as f64);
    r.put("sender_cpu_s", sent.cpu.as_secs_f64());
    r.put("floor_cpu_us_per_delivered_msg", sent.cpu.as_secs_f64() * 1e6 / delivered);
    r
}

type Pairs = (Vec<TcpStream>, Arc<AtomicU64>, Vec<tokio::task::JoinHandle<()>>);

/// Opens `n` loopback connections: the accepted ends (blocking, TCP_NODELAY) for the sender,
/// the connecting ends read by tokio tasks that count the bytes, as subscribers would.
async fn connect_pairs(n: usize) -> std::io::Result<Pairs> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let received = Arc::new(AtomicU64::new(0));
    let mut server_side = Vec::with_capacity(n);
    let mut readers = Vec::with_capacity(n);
    for _ in 0..n {
        let client = tokio::net::TcpStream::connect(addr).await?;
        // The handshake is complete once connect returns: accept does not block.
        let (accepted, _) = listener.accept()?;
        accepted.set_nodelay(true)?;
        server_side.push(accepted);
        let received = received.clone();
        readers.push(tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut client = client;
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = client.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
        }));
    }
    Ok((server_side, received, readers))
}

/// The "server": one frame per publish, one `send` per subscriber of the channel.
fn send_loop(mut socks: Vec<TcpStream>, channels: usize, rate: f64, duration: Duration, pad: usize) -> Sent {
    let cpu0 = thread_cpu();
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let (mut deliveries, mut bytes, mut error) = (0u64, 0u64, None);
    let mut k: u64 = 0;
    'publish: while start.elapsed() < duration {
        let due = start + interval.mul_f64(k as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let channel = (k % channels as u64) as usize;
        let frame = text_frame(&event_json(channel, k / channels as u64, pad));
        for sock in socks.iter_mut().skip(channel).step_by(channels) {
            if let Err(e) = sock.write_all(&frame) {
                error = Some(e.to_string());
                break 'publish;
            }
            deliveries += 1;
            bytes += frame.len() as u64;
        }
        k += 1;
    }
    let wall = start.elapsed();
    let cpu = thread_cpu().saturating_sub(cpu0);
    // Closing the sockets ends the readers.
    for s in &mut socks {
        let _ = s.flush();
    }
    Sent { deliveries, bytes, cpu, wall, error }
}

/// The event a server sends in `fanout` (same shape and size).
fn event_json(channel: usize, seq: u64, pad: usize) -> String {
    let data = payload_json(0, seq, now_ns(), pad);
    serde_json::json!({"event": "bench", "channel": format!("bench-{channel}"), "data": data}).to_string()
}

/// An unmasked, final WebSocket text frame (RFC 6455 5.2), as a server sends it.
fn text_frame(payload: &str) -> Vec<u8> {
    let len = payload.len();
    let mut f = Vec::with_capacity(len + 10);
    f.push(0x81);
    if len < 126 {
        f.push(len as u8);
    } else if len <= u16::MAX as usize {
        f.push(126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    f.extend_from_slice(payload.as_bytes());
    f
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::text_frame;

    #[test]
    fn text_frame_headers_follow_rfc6455_lengths() {
        assert_eq!(text_frame("hi"), [0x81, 2, b'h', b'i']);
        let medium = "x".repeat(300);
        assert_eq!(&text_frame(&medium)[..4], &[0x81, 126, 0x01, 0x2c]);
        let big = "x".repeat(70_000);
        assert_eq!(&text_frame(&big)[..2], &[0x81, 127]);
    }
}
