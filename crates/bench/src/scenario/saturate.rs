//! `saturate`: fan-out at rising publish rates (×factor per step) over one set of subscribers
//! until p99 passes a bound, a delivery is lost or reordered, or the publisher cannot keep the
//! rate; then bisects (geometrically, `refine` times) between the last sustained rate and the
//! first failed one, so the result is not quantized to the step factor; reports the highest
//! sustained delivered msgs/s, and optionally re-measures latency at half that rate.

use std::time::Duration;

use crate::fleet::RampOpts;
use crate::publisher::ChannelSeqs;
use crate::report::Report;
use crate::scenario::{phase, ramp_subscribers, Ctx, Phase, Subscribers};

pub(crate) struct Opts {
    pub ramp: RampOpts,
    pub start_rate: f64,
    pub factor: f64,
    pub step: Duration,
    pub max_steps: usize,
    pub p99_bound_ms: f64,
    pub publishers: usize,
    pub payload: usize,
    pub half_check: bool,
    pub drain: Duration,
    /// Bisection steps between the last sustained and the first failed rate.
    pub refine: usize,
}

pub(crate) async fn run(ctx: &Ctx, o: &Opts) -> Report {
    let mut r = Report::new(
        "saturate",
        &ctx.server,
        serde_json::json!({
            "subscribers": o.ramp.count, "channels": o.ramp.channels, "start_rate": o.start_rate,
            "factor": o.factor, "step_s": o.step.as_secs_f64(), "max_steps": o.max_steps,
            "p99_bound_ms": o.p99_bound_ms, "publishers": o.publishers, "refine": o.refine,
        }),
    );
    let Some(Subscribers { stats, live, fleet }) = ramp_subscribers(ctx, &o.ramp, &mut r).await else {
        return r;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let names = (0..o.ramp.channels).map(|c| o.ramp.channel_name(c)).collect();
    let seqs = ChannelSeqs::new(names);
    let mut best: Option<Phase> = None;
    let mut rate = o.start_rate;
    let mut failed_rate = None;
    let mut stop_reason = format!("reached max_steps ({})", o.max_steps);
    for k in 0..o.max_steps {
        let ph = phase(ctx, &seqs, &live, &stats, rate, o.step, o.publishers, o.payload, o.drain).await;
        record(&mut r, &format!("step{k}_"), &ph);
        if let Err(why) = verdict(&ph, o.p99_bound_ms) {
            stop_reason = format!("step {k}: {why}");
            failed_rate = Some(rate);
            break;
        }
        best = Some(ph);
        rate *= o.factor;
    }
    // Bisect between the last sustained rate and the first failed one.
    if let (Some(mut fail), Some(mut good)) = (failed_rate, best.as_ref().map(|b| b.rate)) {
        for i in 0..o.refine {
            let rate = (good * fail).sqrt();
            let ph = phase(ctx, &seqs, &live, &stats, rate, o.step, o.publishers, o.payload, o.drain).await;
            record(&mut r, &format!("refine{i}_"), &ph);
            match verdict(&ph, o.p99_bound_ms) {
                Ok(()) => {
                    good = rate;
                    best = Some(ph);
                }
                Err(why) => {
                    fail = rate;
                    stop_reason = format!("refine {i}: {why}");
                }
            }
        }
    }
    r.note(format!("stopped: {stop_reason}"));
    let Some(best) = best else {
        r.note("no step was sustained");
        fleet.stop(Duration::from_secs(10)).await;
        return r;
    };
    r.put("max_sustained_delivered_msgs_per_s", best.delivered_per_s());
    r.put("max_sustained_publish_rate", best.rate);
    best.put(&mut r, "best_");
    if o.half_check {
        let half = best.rate / 2.0;
        let ph = phase(
            ctx,
            &seqs,
            &live,
            &stats,
            half,
            o.step.max(Duration::from_secs(5)),
            o.publishers,
            o.payload,
            o.drain,
        )
        .await;
        ph.put(&mut r, "half_");
    }
    fleet.stop(Duration::from_secs(10)).await;
    r
}

/// Puts one phase's figures into the report, prefixed, and logs them.
fn record(r: &mut Report, prefix: &str, ph: &Phase) {
    let p99 = ph.snap.ms(0.99);
    eprintln!(
        "{prefix}: rate {:.0}/s achieved {:.0}/s delivered {:.0} msgs/s p99 {p99:.2} ms lost {} ooo {}",
        ph.rate,
        ph.achieved_rate(),
        ph.delivered_per_s(),
        ph.lost(),
        ph.snap.reordered
    );
    let s = |n: &str| format!("{prefix}{n}");
    r.put(&s("publish_rate"), ph.rate);
    r.put(&s("delivered_msgs_per_s"), ph.delivered_per_s());
    r.put(&s("latency_p99_ms"), p99);
    r.put(&s("lost"), ph.lost() as f64);
    if let Some(cpu) = ph.server_cpu {
        r.put(&s("server_cpu_us_per_msg"), cpu.as_secs_f64() * 1e6 / ph.snap.received.max(1) as f64);
    }
}

/// Whether a phase was sustained: clean (no loss, reordering or publish failure, the asked rate
/// achieved) and within the p99 bound. `Err` says why not.
fn verdict(ph: &Phase, p99_bound_ms: f64) -> Result<(), String> {
    let p99 = ph.snap.ms(0.99);
    if ph.clean() && p99 <= p99_bound_ms {
        return Ok(());
    }
    Err(format!(
        "at {:.0} publishes/s: p99 {p99:.2} ms (bound {p99_bound_ms}), lost {}, out-of-order {}, publish failures {}, achieved {:.0}/s",
        ph.rate,
        ph.lost(),
        ph.snap.reordered,
        ph.publish.failed,
        ph.achieved_rate()
    ))
}
