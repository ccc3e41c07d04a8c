//! The signed HTTP API publisher: `POST /apps/{id}/events` over persistent HTTP/1.1 keep-alive
//! connections (hyper's client connection, one request in flight per connection), paced to a
//! target rate. Channels are pinned to one connection each so a channel's events are sent, and
//! therefore numbered, strictly in order; every event carries a send timestamp and the
//! channel's sequence number.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::client::{now_ns, payload_json, Target};
use crate::sign;

/// Per-channel publishing state that lives across phases (saturation steps).
pub(crate) struct ChannelSeqs {
    pub names: Vec<String>,
    /// Last sequence number used per channel.
    pub seq: Vec<AtomicU64>,
    /// Publishes answered 200 per channel.
    pub ok: Vec<AtomicU64>,
}

impl ChannelSeqs {
    pub(crate) fn new(names: Vec<String>) -> Arc<ChannelSeqs> {
        let n = names.len();
        Arc::new(ChannelSeqs {
            names,
            seq: (0..n).map(|_| AtomicU64::new(0)).collect(),
            ok: (0..n).map(|_| AtomicU64::new(0)).collect(),
        })
    }
    pub(crate) fn ok_counts(&self) -> Vec<u64> {
        self.ok.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }
}

/// One keep-alive HTTP/1.1 connection to the API.
pub(crate) struct ApiConn {
    sender: SendRequest<Full<Bytes>>,
    target: Target,
    path: String,
    /// TCP connections opened (1 = keep-alive held for the whole run).
    pub connects: u64,
}

impl ApiConn {
    pub(crate) async fn connect(target: &Target) -> Result<ApiConn, String> {
        let sender = Self::open(target).await?;
        Ok(ApiConn { sender, target: target.clone(), path: format!("/apps/{}/events", target.app_id), connects: 1 })
    }

    async fn open(target: &Target) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = TcpStream::connect((target.host, target.port)).await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let stream = crate::tls::wrap(stream, target).await.map_err(|e| format!("TLS: {e}"))?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Triggers `event` on `channel`; returns the HTTP status.
    pub(crate) async fn trigger(&mut self, channel: &str, event: &str, data: &str) -> Result<u16, String> {
        let body = serde_json::json!({ "name": event, "channel": channel, "data": data }).to_string();
        let ts = now_ns() / 1_000_000_000;
        let q = sign::api_query(&self.target.key, &self.target.secret, "POST", &self.path, body.as_bytes(), ts);
        if self.sender.ready().await.is_err() {
            // The server closed the keep-alive connection: reconnect once.
            self.sender = Self::open(&self.target).await?;
            self.connects += 1;
        }
        let req = hyper::Request::post(format!("{}?{q}", self.path))
            .header("host", format!("{}:{}", self.target.host, self.target.port))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let resp = self.sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let _ = resp.into_body().collect().await;
        Ok(status)
    }
}

/// Result of one publishing phase.
pub(crate) struct PublishResult {
    pub ok: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// HTTP request latency, µs.
    pub http: Histogram<u64>,
    /// TCP connections opened by the publisher (equal to the connection count when keep-alive holds).
    pub tcp_connects: u64,
}

/// Publishes round-robin over `seqs` channels at `rate` events/s in total for `duration`,
/// using `conns` keep-alive connections (channel `c` always goes through connection `c % conns`).
pub(crate) async fn run(
    target: &Target,
    seqs: &Arc<ChannelSeqs>,
    rate: f64,
    duration: Duration,
    conns: usize,
    pad: usize,
) -> PublishResult {
    let conns = conns.clamp(1, seqs.names.len().max(1));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..conns {
        let (target, seqs) = (target.clone(), seqs.clone());
        let my: Vec<usize> = (0..seqs.names.len()).filter(|c| c % conns == k).collect();
        let per_conn_rate = rate * my.len() as f64 / seqs.names.len() as f64;
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("bounds");
            let (mut ok, mut failed, mut first_error) = (0u64, 0u64, None);
            let mut api = match ApiConn::connect(&target).await {
                Ok(a) => a,
                Err(e) => return (0, 1, Some(format!("connect: {e}")), hist, 0),
            };
            let period = 1.0 / per_conn_rate.max(1e-9);
            // Connection k starts k/conns of a period late, so the publishes of all connections
            // are evenly spread over time instead of leaving in bursts of `conns` at once.
            let phase = k as f64 / conns as f64;
            let mut n = 0u64;
            loop {
                let due = start + Duration::from_secs_f64(period * (n as f64 + phase));
                if due.duration_since(start) >= duration {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let c = my[n as usize % my.len()];
                n += 1;
                let s = seqs.seq[c].fetch_add(1, Ordering::Relaxed) + 1;
                let t0 = Instant::now();
                let data = payload_json(0, s, now_ns(), pad);
                match api.trigger(&seqs.names[c], "bench", &data).await {
                    Ok(200) => {
                        ok += 1;
                        seqs.ok[c].fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(st) => {
                        failed += 1;
                        first_error.get_or_insert(format!("HTTP {st}"));
                    }
                    Err(e) => {
                        failed += 1;
                        first_error.get_or_insert(e);
                    }
                }
                let _ = hist.record((t0.elapsed().as_micros() as u64).max(1));
            }
            (ok, failed, first_error, hist, api.connects)
        }));
    }
    let mut out = PublishResult {
        ok: 0,
        failed: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        http: Histogram::new_with_bounds(1, 600_000_000, 3).expect("bounds"),
        tcp_connects: 0,
    };
    for t in tasks {
        if let Ok((ok, failed, err, hist, connects)) = t.await {
            out.ok += ok;
            out.failed += failed;
            if out.first_error.is_none() {
                out.first_error = err;
            }
            let _ = out.http.add(&hist);
            out.tcp_connects += connects;
        }
    }
    out.elapsed = start.elapsed();
    out
}
