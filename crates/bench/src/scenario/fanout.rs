//! `fanout`: S subscribers over C channels, the publisher triggering through the signed HTTP
//! API at a set rate; end-to-end latency percentiles, delivered msgs/s, lost and out-of-order
//! deliveries, server CPU per delivered message.

use std::time::Duration;

use crate::fleet::RampOpts;
use crate::publisher::ChannelSeqs;
use crate::report::Report;
use crate::scenario::{phase, ramp_subscribers, Ctx, Subscribers};

pub(crate) struct Opts {
    pub ramp: RampOpts,
    pub rate: f64,
    pub duration: Duration,
    pub publishers: usize,
    pub payload: usize,
    pub drain: Duration,
}

pub(crate) async fn run(ctx: &Ctx, o: &Opts) -> Report {
    let mut r = Report::new(
        "fanout",
        &ctx.server,
        serde_json::json!({
            "subscribers": o.ramp.count, "channels": o.ramp.channels, "rate": o.rate,
            "duration_s": o.duration.as_secs_f64(), "publishers": o.publishers, "payload_pad": o.payload,
        }),
    );
    let Some(Subscribers { stats, live, fleet }) = ramp_subscribers(ctx, &o.ramp, &mut r).await else {
        return r;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let names = (0..o.ramp.channels).map(|c| o.ramp.channel_name(c)).collect();
    let seqs = ChannelSeqs::new(names);
    let ph = phase(ctx, &seqs, &live, &stats, o.rate, o.duration, o.publishers, o.payload, o.drain).await;
    ph.put(&mut r, "");
    fleet.stop(Duration::from_secs(10)).await;
    r
}
