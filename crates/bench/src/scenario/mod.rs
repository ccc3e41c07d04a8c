//! The scenarios and what they share: the run context (target, server pid, output), server
//! samples from `/proc`, the subscriber task that measures deliveries, and one measured
//! fan-out phase (publish at a rate for a while, drain, account for every expected delivery).

pub(crate) mod churn;
pub(crate) mod client_events;
pub(crate) mod connections;
pub(crate) mod fanout;
pub(crate) mod floor;
pub(crate) mod saturate;
pub(crate) mod soak;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::client::{decode, now_ns, parse_payload, Target};
use crate::fleet::{Fleet, Holder, RampOpts, RampResult};
use crate::procstat::{self, ProcSample};
use crate::publisher::{self, ChannelSeqs, PublishResult};
use crate::report::Report;
use crate::stats::{Seq, Snapshot, Stats};

/// What every scenario needs.
pub(crate) struct Ctx {
    pub target: Target,
    pub pid: Option<u32>,
    pub server: String,
    pub out: Option<PathBuf>,
}

impl Ctx {
    pub(crate) fn server_sample(&self) -> Option<ProcSample> {
        self.pid.and_then(|p| procstat::sample(Some(p)))
    }
}

/// Puts the ramp's figures (prefixed) into the report.
pub(crate) fn put_ramp(r: &mut Report, prefix: &str, ramp: &RampResult) {
    r.put(&format!("{prefix}opened"), ramp.opened as f64);
    r.put(&format!("{prefix}failed"), ramp.failures.values().sum::<u64>() as f64);
    let secs = ramp.elapsed.as_secs_f64().max(1e-9);
    r.put(&format!("{prefix}connect_subscribe_per_s"), ramp.opened as f64 / secs);
    r.put(&format!("{prefix}channels_used"), ramp.per_channel.iter().filter(|&&n| n > 0).count() as f64);
    if !ramp.setup.is_empty() {
        r.put(&format!("{prefix}setup_p50_ms"), ramp.setup.value_at_quantile(0.5) as f64 / 1000.0);
        r.put(&format!("{prefix}setup_p99_ms"), ramp.setup.value_at_quantile(0.99) as f64 / 1000.0);
    }
    if !ramp.failures.is_empty() {
        r.note(format!("{prefix}failures: {:?}", ramp.failures));
    }
    if let Some(reason) = &ramp.stopped_early {
        r.note(format!("{prefix}stopped early after {} attempts: {reason}", ramp.attempted));
    }
}

/// Live subscribers per channel, maintained by the subscriber tasks.
pub(crate) type Live = Arc<Vec<AtomicU64>>;

/// Subscribers that track sequence numbers and latency (fanout, saturate, churn).
pub(crate) struct Subscribers {
    pub stats: Arc<Stats>,
    pub live: Live,
    pub fleet: Fleet,
}

/// Ramps up tracking subscribers and records the ramp in `r`; `None` (with a note in `r`) when
/// no subscriber could connect, so there is nothing to measure.
pub(crate) async fn ramp_subscribers(ctx: &Ctx, opts: &RampOpts, r: &mut Report) -> Option<Subscribers> {
    let stats = Arc::new(Stats::default());
    let live = live(opts.channels);
    let fleet = Fleet::default();
    let ramp = fleet.ramp(&ctx.target, opts, tracking_holder(stats.clone(), live.clone())).await;
    put_ramp(r, "ramp_", &ramp);
    if ramp.opened == 0 {
        r.note("no subscriber connected; nothing measured");
        return None;
    }
    Some(Subscribers { stats, live, fleet })
}

pub(crate) fn live(channels: usize) -> Live {
    Arc::new((0..channels.max(1)).map(|_| AtomicU64::new(0)).collect())
}

/// The subscriber task: records latency and order of every `bench` event (HTTP-published, one
/// sequence per channel) and keeps `live` up to date.
pub(crate) fn tracking_holder(stats: Arc<Stats>, live: Live) -> Holder {
    Arc::new(move |i, _channel, mut conn, mut stop| {
        let (stats, live) = (stats.clone(), live.clone());
        let ch = i % live.len();
        live[ch].fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let mut seq = Seq::default();
            loop {
                tokio::select! {
                    r = conn.next_text() => match r {
                        Ok(t) => {
                            let Some(f) = decode(t.as_str()) else { continue };
                            if f.event == "bench" {
                                if let Some(p) = f.data.as_deref().and_then(parse_payload) {
                                    stats.record(i, p.t, now_ns(), seq.observe(p.s));
                                }
                            }
                        }
                        Err(_) => {
                            stats.disconnects.fetch_add(1, Ordering::Relaxed);
                            live[ch].fetch_sub(1, Ordering::Relaxed);
                            return;
                        }
                    },
                    _ = stop.changed() => return,
                }
            }
        })
    })
}

/// A task that only keeps its connection open (answering pings) until stopped.
pub(crate) fn idle_holder(stats: Arc<Stats>) -> Holder {
    Arc::new(move |_i, _channel, mut conn, mut stop| {
        let stats = stats.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = conn.next_text() => if r.is_err() {
                        stats.disconnects.fetch_add(1, Ordering::Relaxed);
                        return;
                    },
                    _ = stop.changed() => return,
                }
            }
        })
    })
}

/// Waits until `received() >= expected` or `timeout` passes.
pub(crate) async fn drain(stats: &Stats, expected: u64, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    while stats.received() < expected && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One measured fan-out phase.
pub(crate) struct Phase {
    pub rate: f64,
    pub publish: PublishResult,
    pub expected: u64,
    pub snap: Snapshot,
    pub server_cpu: Option<Duration>,
    pub bench_cpu: Option<Duration>,
    /// From the first publish to the last delivery.
    pub wall: Duration,
    pub subscribers: u64,
}

impl Phase {
    pub(crate) fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.snap.received)
    }
    pub(crate) fn delivered_per_s(&self) -> f64 {
        self.snap.received as f64 / self.wall.as_secs_f64().max(1e-9)
    }
    pub(crate) fn achieved_rate(&self) -> f64 {
        self.publish.ok as f64 / self.publish.elapsed.as_secs_f64().max(1e-9)
    }
    /// Sustained: nothing lost, nothing reordered, every publish accepted, and the publisher
    /// kept at least 95 % of the asked rate.
    pub(crate) fn clean(&self) -> bool {
        self.lost() == 0
            && self.snap.reordered == 0
            && self.publish.failed == 0
            && self.achieved_rate() >= 0.95 * self.rate
    }

    /// Writes the phase's figures with `prefix`.
    pub(crate) fn put(&self, r: &mut Report, prefix: &str) {
        let p = |n: &str| format!("{prefix}{n}");
        r.put(&p("subscribers"), self.subscribers as f64);
        r.put(&p("publish_rate_target_per_s"), self.rate);
        r.put(&p("publish_rate_achieved_per_s"), self.achieved_rate());
        r.put(&p("publish_failed"), self.publish.failed as f64);
        r.put(&p("api_tcp_connections"), self.publish.tcp_connects as f64);
        r.put(&p("api_http_p50_ms"), self.publish.http.value_at_quantile(0.5) as f64 / 1000.0);
        r.put(&p("api_http_p99_ms"), self.publish.http.value_at_quantile(0.99) as f64 / 1000.0);
        r.put(&p("expected_deliveries"), self.expected as f64);
        r.put(&p("delivered"), self.snap.received as f64);
        r.put(&p("lost"), self.lost() as f64);
        r.put(&p("out_of_order"), self.snap.reordered as f64);
        r.put(&p("delivered_msgs_per_s"), self.delivered_per_s());
        r.put(&p("latency_p50_ms"), self.snap.ms(0.5));
        r.put(&p("latency_p99_ms"), self.snap.ms(0.99));
        r.put(&p("latency_p999_ms"), self.snap.ms(0.999));
        r.put(&p("latency_max_ms"), self.snap.max_ms());
        let per_msg = |cpu: Duration| cpu.as_secs_f64() * 1e6 / (self.snap.received.max(1) as f64);
        if let Some(cpu) = self.server_cpu {
            r.put(&p("server_cpu_s"), cpu.as_secs_f64());
            r.put(&p("server_cpu_us_per_delivered_msg"), per_msg(cpu));
            r.put(&p("server_cpu_pct"), 100.0 * cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9));
        }
        if let Some(cpu) = self.bench_cpu {
            r.put(&p("bench_cpu_us_per_delivered_msg"), per_msg(cpu));
        }
        if let Some(e) = &self.publish.first_error {
            r.note(format!("{prefix}first publish error: {e}"));
        }
    }
}

/// Publishes at `rate` for `duration`, waits for the deliveries (at most `drain_for`), and
/// accounts for them. Stats are reset at the start.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn phase(
    ctx: &Ctx,
    seqs: &Arc<ChannelSeqs>,
    live: &Live,
    stats: &Stats,
    rate: f64,
    duration: Duration,
    publishers: usize,
    pad: usize,
    drain_for: Duration,
) -> Phase {
    let _ = stats.take();
    let subs: Vec<u64> = live.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let ok_before = seqs.ok_counts();
    let (s0, b0) = (ctx.server_sample(), procstat::sample(None));
    let t0 = now_ns();
    let publish = publisher::run(&ctx.target, seqs, rate, duration, publishers, pad).await;
    let ok_after = seqs.ok_counts();
    let expected: u64 = (0..ok_after.len()).map(|c| (ok_after[c] - ok_before[c]) * subs[c % subs.len()]).sum();
    drain(stats, expected, drain_for).await;
    let (s1, b1) = (ctx.server_sample(), procstat::sample(None));
    let snap = stats.take();
    let end = if snap.last_ns > t0 { snap.last_ns } else { now_ns() };
    let wall = Duration::from_nanos(end.saturating_sub(t0)).max(publish.elapsed);
    Phase {
        rate,
        publish,
        expected,
        snap,
        server_cpu: procstat::delta(s0, s1).map(|d| d.0),
        bench_cpu: procstat::delta(b0, b1).map(|d| d.0),
        wall,
        subscribers: subs.iter().sum(),
    }
}
