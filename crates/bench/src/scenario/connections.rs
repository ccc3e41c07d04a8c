//! `connections`: open N connections at a given rate, each subscribed to one of C channels;
//! report connect+subscribe throughput, failures (and why the ramp stopped, if it did), the
//! server's RSS per connection, then hold them (answering pings) and check they all survive.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::fleet::{Fleet, RampOpts};
use crate::procstat;
use crate::report::Report;
use crate::scenario::{idle_holder, put_ramp, Ctx};
use crate::stats::Stats;

pub(crate) struct Opts {
    pub ramp: RampOpts,
    pub hold: Duration,
    pub settle: Duration,
}

pub(crate) async fn run(ctx: &Ctx, o: &Opts) -> Report {
    let mut r = Report::new(
        "connections",
        &ctx.server,
        serde_json::json!({
            "connections": o.ramp.count, "rate": o.ramp.rate, "channels": o.ramp.channels,
            "hold_s": o.hold.as_secs_f64(), "spread_after": o.ramp.spread_after,
        }),
    );
    if let Some(pid) = ctx.pid {
        if let Some(n) = procstat::nofile_of(pid) {
            r.put("server_nofile_limit", n as f64);
        }
    }
    let before = ctx.server_sample();
    let stats = Arc::new(Stats::default());
    let fleet = Fleet::default();
    let ramp = fleet.ramp(&ctx.target, &o.ramp, idle_holder(stats.clone())).await;
    put_ramp(&mut r, "", &ramp);
    tokio::time::sleep(o.settle).await;
    let connected = ctx.server_sample();
    if let (Some(b), Some(c)) = (before, connected) {
        r.put("server_rss_before_kib", b.rss_kib as f64);
        r.put("server_rss_connected_kib", c.rss_kib as f64);
        if ramp.opened > 0 {
            let per = (c.rss_kib as f64 - b.rss_kib as f64) * 1024.0 / ramp.opened as f64;
            r.put("server_rss_per_connection_bytes", per);
        }
        r.put("server_cpu_ramp_s", c.cpu.saturating_sub(b.cpu).as_secs_f64());
    }
    tokio::time::sleep(o.hold).await;
    let alive = fleet.alive();
    r.put("alive_after_hold", alive as f64);
    r.put("dropped_during_hold", stats.disconnects.load(Ordering::Relaxed) as f64);
    if let Some(s) = procstat::sample(None) {
        r.put("bench_rss_kib", s.rss_kib as f64);
    }
    fleet.stop(Duration::from_secs(10)).await;
    tokio::time::sleep(o.settle).await;
    if let Some(s) = ctx.server_sample() {
        r.put("server_rss_after_close_kib", s.rss_kib as f64);
    }
    r
}
