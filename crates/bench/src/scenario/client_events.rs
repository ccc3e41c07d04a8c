//! `client-events`: N connections over C private channels, every connection sending
//! `client-bench` events at a fixed per-connection rate (keep it under the server's
//! per-connection limit, 10/s by default) while receiving everyone else's; latency, lost and
//! out-of-order deliveries per sender, refused events, server CPU per delivered message.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::client::{decode, now_ns, parse_payload};
use crate::fleet::{Fleet, Holder, RampOpts};
use crate::procstat;
use crate::report::Report;
use crate::scenario::{drain, live, put_ramp, Ctx, Live};
use crate::stats::{Seq, Stats};

pub(crate) struct Opts {
    pub ramp: RampOpts,
    pub rate_per_conn: f64,
    pub duration: Duration,
    pub drain: Duration,
}

type Window = watch::Receiver<Option<(Instant, Instant)>>;

fn holder(stats: Arc<Stats>, live: Live, sent: Live, rate: f64, go: Window) -> Holder {
    Arc::new(move |i, channel, mut conn, mut stop| {
        let (stats, live, sent, mut go) = (stats.clone(), live.clone(), sent.clone(), go.clone());
        let ch = i % live.len();
        live[ch].fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let period = Duration::from_secs_f64(1.0 / rate.max(1e-6));
            let mut window: Option<(Instant, Instant)> = None;
            let mut next: Option<Instant> = None;
            let mut seq = 0u64;
            let mut from: HashMap<u32, Seq> = HashMap::new();
            loop {
                if window.is_none() {
                    window = *go.borrow_and_update();
                    if let Some((start, _)) = window {
                        // Spread the senders over one period.
                        next = Some(start + period.mul_f64(rand::random::<f64>()));
                    }
                }
                let wake = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
                tokio::select! {
                    r = conn.next_text() => match r {
                        Ok(t) => {
                            let Some(f) = decode(t.as_str()) else { continue };
                            if f.event == "client-bench" {
                                if let Some(p) = f.data.as_deref().and_then(parse_payload) {
                                    let order = from.entry(p.f).or_default().observe(p.s);
                                    stats.record(i, p.t, now_ns(), order);
                                }
                            } else if f.event == "pusher:error" {
                                stats.errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            stats.disconnects.fetch_add(1, Ordering::Relaxed);
                            live[ch].fetch_sub(1, Ordering::Relaxed);
                            return;
                        }
                    },
                    _ = go.changed(), if window.is_none() => {}
                    _ = tokio::time::sleep_until(wake), if next.is_some() => {
                        let end = window.map(|w| w.1).unwrap_or_else(Instant::now);
                        let due = next.unwrap_or_else(Instant::now);
                        if due >= end {
                            next = None;
                            continue;
                        }
                        seq += 1;
                        let data = format!(r#"{{"f":{i},"s":{seq},"t":{}}}"#, now_ns());
                        let frame = format!(r#"{{"event":"client-bench","channel":"{channel}","data":{data}}}"#);
                        if conn.send(frame).await.is_ok() {
                            sent[ch].fetch_add(1, Ordering::Relaxed);
                        }
                        next = Some(due + period);
                    }
                    _ = stop.changed() => return,
                }
            }
        })
    })
}

pub(crate) async fn run(ctx: &Ctx, o: &Opts) -> Report {
    let mut r = Report::new(
        "client-events",
        &ctx.server,
        serde_json::json!({
            "connections": o.ramp.count, "channels": o.ramp.channels,
            "rate_per_connection": o.rate_per_conn, "duration_s": o.duration.as_secs_f64(),
        }),
    );
    let stats = Arc::new(Stats::default());
    let live = live(o.ramp.channels);
    let sent = super::live(o.ramp.channels);
    let (go_tx, go_rx) = watch::channel(None);
    let fleet = Fleet::default();
    let h = holder(stats.clone(), live.clone(), sent.clone(), o.rate_per_conn, go_rx);
    let ramp = fleet.ramp(&ctx.target, &o.ramp, h).await;
    put_ramp(&mut r, "ramp_", &ramp);
    if ramp.opened < 2 {
        r.note("fewer than two connections; nothing measured");
        return r;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let subs: Vec<u64> = live.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let (s0, b0) = (ctx.server_sample(), procstat::sample(None));
    let t0 = now_ns();
    let start = Instant::now() + Duration::from_millis(50);
    let _ = go_tx.send(Some((start, start + o.duration)));
    tokio::time::sleep_until(start + o.duration + Duration::from_millis(100)).await;
    let expected: u64 = sent.iter().zip(&subs).map(|(s, n)| s.load(Ordering::Relaxed) * n.saturating_sub(1)).sum();
    drain(&stats, expected, o.drain).await;
    let (s1, b1) = (ctx.server_sample(), procstat::sample(None));
    let snap = stats.take();
    let total_sent: u64 = sent.iter().map(|s| s.load(Ordering::Relaxed)).sum::<u64>();
    let wall = Duration::from_nanos(snap.last_ns.max(t0 + 1) - t0).max(o.duration);
    r.put("client_events_sent", total_sent as f64);
    r.put("client_events_sent_per_s", total_sent as f64 / o.duration.as_secs_f64());
    r.put("expected_deliveries", expected as f64);
    r.put("delivered", snap.received as f64);
    r.put("lost", expected.saturating_sub(snap.received) as f64);
    r.put("out_of_order", snap.reordered as f64);
    r.put("refused_pusher_error", stats.errors.load(Ordering::Relaxed) as f64);
    r.put("disconnects", stats.disconnects.load(Ordering::Relaxed) as f64);
    r.put("delivered_msgs_per_s", snap.received as f64 / wall.as_secs_f64());
    r.put("latency_p50_ms", snap.ms(0.5));
    r.put("latency_p99_ms", snap.ms(0.99));
    r.put("latency_p999_ms", snap.ms(0.999));
    r.put("latency_max_ms", snap.max_ms());
    if let Some((cpu, _)) = procstat::delta(s0, s1) {
        r.put("server_cpu_s", cpu.as_secs_f64());
        r.put("server_cpu_us_per_delivered_msg", cpu.as_secs_f64() * 1e6 / snap.received.max(1) as f64);
    }
    if let Some((cpu, _)) = procstat::delta(b0, b1) {
        r.put("bench_cpu_us_per_delivered_msg", cpu.as_secs_f64() * 1e6 / snap.received.max(1) as f64);
    }
    fleet.stop(Duration::from_secs(10)).await;
    r
}
