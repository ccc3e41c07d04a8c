//! `churn`: a fan-out runs over a stable set of subscribers while churn workers loop
//! connect → subscribe → hold → unsubscribe → disconnect on the same channels; reports churn
//! cycles, the fan-out's loss/latency meanwhile, and the server's RSS at the start, during, and
//! after a settle period, to catch leaks (the end RSS should come back near the start).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::client::{self, Target};
use crate::fleet::RampOpts;
use crate::publisher::ChannelSeqs;
use crate::report::Report;
use crate::scenario::{phase, ramp_subscribers, Ctx, Subscribers};
use crate::sign;

pub(crate) struct Opts {
    pub ramp: RampOpts,
    pub rate: f64,
    pub duration: Duration,
    pub publishers: usize,
    pub churners: usize,
    pub hold: Duration,
    pub settle: Duration,
    pub drain: Duration,
}

struct ChurnCounts {
    cycles: AtomicU64,
    failures: Mutex<BTreeMap<String, u64>>,
}

async fn churner(k: usize, target: Target, ramp: RampOpts, hold: Duration, end: Instant, counts: Arc<ChurnCounts>) {
    // Churn connections come from 127.0.0.2..=127.0.0.9 so their TIME_WAIT ports never compete
    // with the stable subscribers' source address.
    let source = Some(Ipv4Addr::new(127, 0, 0, 2 + (k % 8) as u8));
    let mut n = k;
    while Instant::now() < end {
        n += 7919;
        let channel = ramp.channel_name(n);
        let res = async {
            let mut conn = client::connect(&target, source, ramp.timeout).await?;
            let auth = ramp.private.then(|| sign::channel_auth(&target.key, &target.secret, &conn.socket_id, &channel));
            tokio::time::timeout(ramp.timeout, conn.subscribe(&channel, auth))
                .await
                .unwrap_or(Err(client::Failure::Timeout))?;
            let held = hold.mul_f64(2.0 * rand::random::<f64>());
            let until = Instant::now() + held;
            // Keep reading (the channel's fan-out) while held.
            while let Ok(r) = tokio::time::timeout_at(until, conn.next_text()).await {
                r?;
            }
            conn.unsubscribe(&channel).await?;
            conn.close().await;
            Ok::<(), client::Failure>(())
        }
        .await;
        match res {
            Ok(()) => {
                counts.cycles.fetch_add(1, Ordering::Relaxed);
            }
            Err(f) => {
                *counts.failures.lock().expect("lock").entry(f.label()).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

pub(crate) async fn run(ctx: &Ctx, o: &Opts) -> Report {
    let mut r = Report::new(
        "churn",
        &ctx.server,
        serde_json::json!({
            "subscribers": o.ramp.count, "channels": o.ramp.channels, "rate": o.rate,
            "duration_s": o.duration.as_secs_f64(), "churners": o.churners, "hold_ms": o.hold.as_millis() as u64,
            "settle_s": o.settle.as_secs_f64(),
        }),
    );
    if let Some(s) = ctx.server_sample() {
        r.put("server_rss_idle_kib", s.rss_kib as f64);
    }
    let Some(Subscribers { stats, live, fleet }) = ramp_subscribers(ctx, &o.ramp, &mut r).await else {
        return r;
    };
    tokio::time::sleep(o.settle).await;
    let start_rss = ctx.server_sample().map(|s| s.rss_kib);
    let counts = Arc::new(ChurnCounts { cycles: AtomicU64::new(0), failures: Mutex::default() });
    let end = Instant::now() + o.duration;
    let churners: Vec<_> = (0..o.churners)
        .map(|k| tokio::spawn(churner(k, ctx.target.clone(), o.ramp.clone(), o.hold, end, counts.clone())))
        .collect();
    // RSS sampler.
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak, pid) = (done.clone(), peak.clone(), ctx.pid);
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Some(s) = pid.and_then(|p| crate::procstat::sample(Some(p))) {
                    peak.fetch_max(s.rss_kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let names = (0..o.ramp.channels).map(|c| o.ramp.channel_name(c)).collect();
    let seqs = ChannelSeqs::new(names);
    let ph = phase(ctx, &seqs, &live, &stats, o.rate, o.duration, o.publishers, 0, o.drain).await;
    for c in churners {
        let _ = tokio::time::timeout(o.ramp.timeout + o.hold * 2 + Duration::from_secs(5), c).await;
    }
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    tokio::time::sleep(o.settle).await;
    let end_rss = ctx.server_sample().map(|s| s.rss_kib);
    let cycles = counts.cycles.load(Ordering::Relaxed);
    r.put("churn_cycles", cycles as f64);
    r.put("churn_cycles_per_s", cycles as f64 / o.duration.as_secs_f64());
    let failures = counts.failures.lock().expect("lock").clone();
    r.put("churn_failures", failures.values().sum::<u64>() as f64);
    if !failures.is_empty() {
        r.note(format!("churn failures: {failures:?}"));
    }
    ph.put(&mut r, "fanout_");
    if let (Some(a), Some(b)) = (start_rss, end_rss) {
        r.put("server_rss_start_kib", a as f64);
        r.put("server_rss_peak_kib", peak.load(Ordering::Relaxed) as f64);
        r.put("server_rss_end_kib", b as f64);
        r.put("server_rss_change_pct", 100.0 * (b as f64 - a as f64) / a.max(1) as f64);
    }
    fleet.stop(Duration::from_secs(10)).await;
    tokio::time::sleep(o.settle).await;
    if let Some(s) = ctx.server_sample() {
        r.put("server_rss_all_closed_kib", s.rss_kib as f64);
    }
    r
}
