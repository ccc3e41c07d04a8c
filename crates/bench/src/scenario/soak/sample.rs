//! The `soak` scenario's samples and verdict: per node, resident memory and open files from
//! `/proc/{pid}` and connections, channels, subscriptions, webhook outbox depth and live tokio
//! tasks from the node's `GET /metrics`; then, per series, the mean of the window after
//! warm-up against the mean of the last window (flat = within the stated tolerance).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::client::Target;
use crate::procstat;

/// The series sampled per node, in table order: (column name, metric name in `/metrics`;
/// empty for the ones read from `/proc`).
pub(crate) const SERIES: &[(&str, &str)] = &[
    ("rss_kib", ""),
    ("open_files", ""),
    ("connections", "herald_connections"),
    ("subscriptions", "herald_subscriptions"),
    ("channels", "herald_channels"),
    ("outbox_depth", "herald_webhook_outbox_depth"),
    ("tasks", "herald_tokio_alive_tasks"),
];

/// One node's values at one time (`NaN` when unreadable), in [`SERIES`] order.
#[derive(Debug, Clone)]
pub(crate) struct NodeSample {
    pub t_s: f64,
    pub node: usize,
    pub values: Vec<f64>,
}

/// Open file descriptors of `pid` (entries of `/proc/{pid}/fd`).
fn open_files(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// `GET /metrics` over a fresh connection.
async fn scrape(target: &Target) -> Result<String, String> {
    let stream = TcpStream::connect((target.host, target.port)).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = hyper::Request::get("/metrics")
        .header("host", format!("{}:{}", target.host, target.port))
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The value of the unlabelled sample `name` in Prometheus text.
pub(crate) fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (n, v) = l.rsplit_once(' ')?;
        (n == name).then(|| v.parse().ok())?
    })
}

/// Samples node `node` (its `/proc` entry when the pid is known, its `/metrics` always).
pub(crate) async fn node(t_s: f64, node: usize, target: &Target, pid: Option<u32>) -> NodeSample {
    let text = tokio::time::timeout(Duration::from_secs(10), scrape(target)).await.ok().and_then(Result::ok);
    let values = SERIES
        .iter()
        .map(|(col, name)| match *col {
            "rss_kib" => pid.and_then(|p| procstat::sample(Some(p))).map_or(f64::NAN, |s| s.rss_kib as f64),
            "open_files" => pid.and_then(open_files).map_or(f64::NAN, |n| n as f64),
            _ => text.as_deref().and_then(|t| metric(t, name)).unwrap_or(f64::NAN),
        })
        .collect();
    NodeSample { t_s, node, values }
}

/// One series of one node, judged.
#[derive(Debug, Clone)]
pub(crate) struct Judged {
    pub node: usize,
    pub series: &'static str,
    pub start: f64,
    pub warm: f64,
    pub end: f64,
    /// Least-squares slope over the samples from the warm-up window on, per hour.
    pub slope_per_h: f64,
    pub limit: f64,
    pub flat: bool,
}

/// Growth allowed from the warm-up window to the last one: `tolerance` (a fraction) of the
/// warm-up mean plus an absolute slack for the small count series (a few channels or tasks
/// more or less is the load's own jitter, not a leak).
pub(crate) fn limit(series: &str, warm: f64, tolerance: f64) -> f64 {
    let slack = match series {
        "rss_kib" => 0.0,
        _ => 20.0,
    };
    warm * (1.0 + tolerance) + slack
}

fn mean(v: &[f64]) -> f64 {
    let v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn slope(points: &[(f64, f64)]) -> f64 {
    let p: Vec<_> = points.iter().copied().filter(|(_, y)| y.is_finite()).collect();
    if p.len() < 2 {
        return f64::NAN;
    }
    let n = p.len() as f64;
    let (mx, my) = (p.iter().map(|q| q.0).sum::<f64>() / n, p.iter().map(|q| q.1).sum::<f64>() / n);
    let sxx: f64 = p.iter().map(|q| (q.0 - mx).powi(2)).sum();
    let sxy: f64 = p.iter().map(|q| (q.0 - mx) * (q.1 - my)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx * 3600.0
    }
}

/// Judges every series of every node: the mean over `warm` (seconds since the load started)
/// against the mean over `end`.
pub(crate) fn judge(
    samples: &[NodeSample],
    nodes: usize,
    warm: (f64, f64),
    end: (f64, f64),
    tolerance: f64,
) -> Vec<Judged> {
    let mut out = Vec::new();
    for node in 0..nodes {
        let mine: Vec<&NodeSample> = samples.iter().filter(|s| s.node == node).collect();
        for (k, (series, _)) in SERIES.iter().enumerate() {
            let within = |a: f64, b: f64| -> Vec<f64> {
                mine.iter().filter(|s| s.t_s >= a && s.t_s <= b).map(|s| s.values[k]).collect()
            };
            let start = mine.first().map_or(f64::NAN, |s| s.values[k]);
            let (w, e) = (mean(&within(warm.0, warm.1)), mean(&within(end.0, end.1)));
            let pts: Vec<(f64, f64)> = mine.iter().filter(|s| s.t_s >= warm.0).map(|s| (s.t_s, s.values[k])).collect();
            let lim = limit(series, w, tolerance);
            out.push(Judged {
                node,
                series,
                start,
                warm: w,
                end: e,
                slope_per_h: slope(&pts),
                limit: lim,
                flat: e.is_finite() && w.is_finite() && e <= lim,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: f64, v: f64) -> NodeSample {
        NodeSample { t_s: t, node: 0, values: vec![v; SERIES.len()] }
    }

    #[test]
    fn steady_series_is_flat_and_growing_series_is_not() {
        let steady: Vec<_> = (0..60).map(|i| s(i as f64 * 60.0, 1000.0 + (i % 3) as f64)).collect();
        let j = judge(&steady, 1, (600.0, 1200.0), (3000.0, 3600.0), 0.10);
        assert!(j.iter().all(|j| j.flat), "{j:?}");
        let growing: Vec<_> = (0..60).map(|i| s(i as f64 * 60.0, 1000.0 + 20.0 * i as f64)).collect();
        let j = judge(&growing, 1, (600.0, 1200.0), (3000.0, 3600.0), 0.10);
        assert!(j.iter().all(|j| !j.flat), "{j:?}");
        assert!((j[0].slope_per_h - 1200.0).abs() < 1e-6, "{j:?}");
    }

    #[test]
    fn reads_unlabelled_metric_only() {
        let text = "# TYPE herald_channels gauge\nherald_channels 12\nherald_errors_total{code=\"4301\"} 3\n";
        assert_eq!(metric(text, "herald_channels"), Some(12.0));
        assert_eq!(metric(text, "herald_errors_total"), None);
    }
}
