//! `soak`: an hour (by default) of steady mixed load against one or more herald nodes, to show
//! that nothing grows without bound. Stable subscribers stay connected on public channels and
//! account for every HTTP publish (published through any node); churn workers connect,
//! subscribe to public, private and presence channels, send client events, switch presence
//! channels, disconnect (cleanly or by dropping the socket) and reconnect; the nodes' webhooks
//! go to a receiver inside this process that refuses every third request. Every
//! `sample_every`, each node's RSS, open files, connections, subscriptions, channels, webhook
//! outbox depth and live tasks are recorded (CSV); at the end each series' mean over the last
//! window is judged against its mean over the window after warm-up, and lost publishes,
//! reordering and unexpected closes are counted. Start the nodes with `scripts/soak.sh`.

mod load;
mod receiver;
mod sample;

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::client::Target;
use crate::procstat;
use crate::publisher::ChannelSeqs;
use crate::report::Report;
use crate::scenario::Ctx;
pub(crate) use load::ChurnShape;
use load::{Counters, Stable};
use sample::{Judged, NodeSample, SERIES};

pub(crate) struct Opts {
    /// One port per node (all on `ctx.target.host`).
    pub ports: Vec<u16>,
    /// The nodes' pids, in `ports` order (RSS and open files need them).
    pub pids: Vec<u32>,
    /// Where the webhook receiver listens (the nodes' webhook URL points here).
    pub webhook: SocketAddr,
    pub duration: Duration,
    pub sample_every: Duration,
    pub subscribers: usize,
    pub churners: usize,
    pub shape: ChurnShape,
    /// HTTP publishes per second in total.
    pub rate: f64,
    /// Allowed growth from the warm-up window to the last window, as a fraction.
    pub tolerance: f64,
    /// How long after the load stops the "after" sample is taken.
    pub settle: Duration,
    pub csv: Option<PathBuf>,
    pub md: Option<PathBuf>,
}

/// The judged windows (seconds since the load started): the second sixth of the run (minutes
/// 10–20 of an hour) and the last sixth.
fn windows(duration: Duration) -> ((f64, f64), (f64, f64)) {
    let d = duration.as_secs_f64();
    let w = d / 6.0;
    ((w, 2.0 * w), (d - w, d))
}

const CSV_HEADER: &str = "t_s,node,rss_kib,open_files,connections,subscriptions,channels,outbox_depth,tasks,\
                          publishes_ok,churn_cycles,client_events_sent,webhook_requests,bench_rss_kib";

fn csv_rows(samples: &[NodeSample], c: &Counters, hooks: &receiver::Received) -> String {
    let bench = procstat::sample(None).map_or(0, |s| s.rss_kib);
    let mut out = String::new();
    for s in samples {
        let vals: Vec<String> = s.values.iter().map(|v| format!("{v}")).collect();
        let _ = writeln!(
            out,
            "{:.0},{},{},{},{},{},{},{}",
            s.t_s,
            s.node,
            vals.join(","),
            c.publishes_ok.load(Ordering::Relaxed),
            c.churn_cycles.load(Ordering::Relaxed),
            c.client_events_sent.load(Ordering::Relaxed),
            hooks.requests.load(Ordering::Relaxed),
            bench
        );
    }
    out
}

async fn sample_all(targets: &[Target], pids: &[u32], t_s: f64) -> Vec<NodeSample> {
    let mut out = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        out.push(sample::node(t_s, i, t, pids.get(i).copied()).await);
    }
    out
}

pub(crate) async fn run(ctx: &Ctx, o: &Opts) -> Report {
    let mut r = Report::new(
        "soak",
        &ctx.server,
        serde_json::json!({
            "nodes": o.ports.len(), "duration_s": o.duration.as_secs_f64(), "sample_every_s": o.sample_every.as_secs_f64(),
            "subscribers": o.subscribers, "public_channels": o.shape.public_channels, "churners": o.churners,
            "private_channels": o.shape.private_channels, "presence_channels": o.shape.presence_channels,
            "hold_s": o.shape.hold.as_secs_f64(), "client_events_per_s_per_conn": o.shape.client_rate,
            "publish_rate": o.rate, "tolerance_pct": o.tolerance * 100.0,
        }),
    );
    let targets: Arc<Vec<Target>> =
        Arc::new(o.ports.iter().map(|&port| Target { port, ..ctx.target.clone() }).collect());
    let hooks = match receiver::start(o.webhook, ctx.target.secret.clone()).await {
        Ok(h) => h,
        Err(e) => {
            r.note(format!("webhook receiver could not bind {}: {e}", o.webhook));
            return r;
        }
    };
    let mut csv = o.csv.as_ref().and_then(|p| {
        let f = std::fs::File::create(p).ok()?;
        let mut f = std::io::LineWriter::new(f);
        writeln!(f, "{CSV_HEADER}").ok()?;
        Some(f)
    });
    let counters = Arc::new(Counters::default());
    let idle = sample_all(&targets, &o.pids, -1.0).await;

    // Stable subscribers, all subscribed before the first publish.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stables: Vec<Arc<Stable>> = (0..o.subscribers)
        .map(|i| Arc::new(Stable { channel: i % o.shape.public_channels.max(1), ..Stable::default() }))
        .collect();
    let mut stable_tasks = Vec::new();
    for chunk in stables.chunks(32).enumerate().map(|(n, c)| (n * 32, c)).collect::<Vec<_>>() {
        let (base, group) = chunk;
        let joins: Vec<_> = group
            .iter()
            .enumerate()
            .map(|(j, me)| {
                load::stable_subscriber(base + j, targets.clone(), me.clone(), counters.clone(), stop_rx.clone())
            })
            .collect();
        for res in futures_util::future::join_all(joins).await {
            match res {
                Ok(t) => stable_tasks.push(t),
                Err(f) => {
                    r.note(format!("a stable subscriber could not connect: {}", f.label()));
                }
            }
        }
    }
    r.put("stable_subscribers", stable_tasks.len() as f64);
    tokio::time::sleep(Duration::from_secs(2)).await;

    let start = Instant::now();
    let end = start + o.duration;
    let seqs = ChannelSeqs::new((0..o.shape.public_channels.max(1)).map(load::public_channel).collect());
    let publisher = tokio::spawn(load::publisher(targets.clone(), seqs.clone(), o.rate, end, counters.clone()));
    let churners: Vec<_> = (0..o.churners)
        .map(|k| tokio::spawn(load::churner(k, targets.clone(), o.shape.clone(), end, counters.clone())))
        .collect();

    let mut samples: Vec<NodeSample> = Vec::new();
    let mut tick = tokio::time::interval_at(start, o.sample_every);
    loop {
        let at = tick.tick().await;
        let t_s = at.duration_since(start).as_secs_f64();
        // The load winds down at `end`: a sample then would catch it half gone.
        if at >= end {
            break;
        }
        let now = sample_all(&targets, &o.pids, t_s).await;
        if let Some(f) = csv.as_mut() {
            let _ = f.write_all(csv_rows(&now, &counters, &hooks).as_bytes());
        }
        let line: Vec<String> = now
            .iter()
            .map(|s| {
                let v = |k: usize| s.values[k];
                format!(
                    "n{} rss {:.0} MiB fds {} conns {} chans {} outbox {} tasks {}",
                    s.node,
                    v(0) / 1024.0,
                    v(1),
                    v(2),
                    v(4),
                    v(5),
                    v(6)
                )
            })
            .collect();
        eprintln!(
            "soak t={t_s:.0}s | {} | published {} cycles {} hooks {}",
            line.join(" | "),
            counters.publishes_ok.load(Ordering::Relaxed),
            counters.churn_cycles.load(Ordering::Relaxed),
            hooks.requests.load(Ordering::Relaxed)
        );
        samples.extend(now);
    }

    // Load off: publisher and churners end at `end`; then the deliveries drain.
    let _ = publisher.await;
    for c in churners {
        let _ = tokio::time::timeout(o.shape.hold * 2 + Duration::from_secs(30), c).await;
    }
    let expected = |s: &Stable| seqs.ok[s.channel].load(Ordering::Relaxed);
    let drain_until = Instant::now() + Duration::from_secs(15);
    loop {
        let short: u64 = stables
            .iter()
            .filter(|s| s.intact.load(Ordering::Relaxed))
            .map(|s| expected(s).saturating_sub(s.received.load(Ordering::Relaxed)))
            .sum();
        if short == 0 || Instant::now() >= drain_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let intact: Vec<&Arc<Stable>> = stables.iter().filter(|s| s.intact.load(Ordering::Relaxed)).collect();
    let expected_total: u64 = intact.iter().map(|s| expected(s)).sum();
    let received_total: u64 = intact.iter().map(|s| s.received.load(Ordering::Relaxed)).sum();
    let lost: u64 = intact.iter().map(|s| expected(s).saturating_sub(s.received.load(Ordering::Relaxed))).sum();
    let extra: u64 = intact.iter().map(|s| s.received.load(Ordering::Relaxed).saturating_sub(expected(s))).sum();
    let _ = stop_tx.send(true);
    for t in stable_tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    tokio::time::sleep(o.settle).await;
    let after = sample_all(&targets, &o.pids, o.duration.as_secs_f64() + o.settle.as_secs_f64()).await;
    if let Some(f) = csv.as_mut() {
        let _ = f.write_all(csv_rows(&after, &counters, &hooks).as_bytes());
    }

    // Figures.
    let c = &counters;
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    r.put("publishes_ok", get(&c.publishes_ok));
    r.put("publishes_failed", get(&c.publishes_failed));
    r.put("stable_expected_deliveries", expected_total as f64);
    r.put("stable_delivered", received_total as f64);
    r.put("stable_lost", lost as f64);
    r.put("stable_duplicated", extra as f64);
    r.put("stable_out_of_order", get(&c.stable_reordered));
    r.put("stable_intact", intact.len() as f64);
    r.put("churn_cycles", get(&c.churn_cycles));
    r.put("churn_dropped_sockets", get(&c.churn_dropped));
    r.put("presence_joins", get(&c.presence_joins));
    r.put("presence_leaves", get(&c.presence_leaves));
    r.put("client_events_sent", get(&c.client_events_sent));
    r.put("client_events_received", get(&c.client_events_received));
    let setup_failures = load::total(&c.setup_failures);
    let unexpected = load::total(&c.unexpected_closes);
    r.put("setup_failures", setup_failures as f64);
    r.put("unexpected_closes", unexpected as f64);
    r.put("error_frames", load::total(&c.error_frames) as f64);
    r.put("webhook_requests", get(&hooks.requests));
    r.put("webhook_refused_500", get(&hooks.refused));
    r.put("webhook_bad_signatures", get(&hooks.bad_signature));
    for (name, n) in hooks.events() {
        r.put(&format!("webhook_events_accepted_{name}"), n as f64);
    }
    for (label, map) in [("setup failures", &c.setup_failures), ("unexpected closes", &c.unexpected_closes)] {
        let m = map.lock().expect("counter lock").clone();
        if !m.is_empty() {
            r.note(format!("{label}: {m:?}"));
        }
    }
    let errors = c.error_frames.lock().expect("counter lock").clone();
    if !errors.is_empty() {
        r.note(format!("pusher:error frames: {errors:?}"));
    }

    let (warm, last) = windows(o.duration);
    let judged = sample::judge(&samples, targets.len(), warm, last, o.tolerance);
    for j in &judged {
        r.put(&format!("node{}_{}_warm", j.node, j.series), j.warm);
        r.put(&format!("node{}_{}_end", j.node, j.series), j.end);
        r.put(&format!("node{}_{}_flat", j.node, j.series), if j.flat { 1.0 } else { 0.0 });
    }
    let mut problems: Vec<String> =
        judged.iter().filter(|j| !j.flat).map(|j| format!("node {} {} grew", j.node, j.series)).collect();
    if lost > 0 {
        problems.push(format!("{lost} publishes lost"));
    }
    if c.stable_reordered.load(Ordering::Relaxed) > 0 {
        problems.push("publishes out of order".into());
    }
    if unexpected > 0 {
        problems.push(format!("{unexpected} unexpected closes"));
    }
    let verdict = if problems.is_empty() { "PASS".to_string() } else { format!("FAIL: {}", problems.join("; ")) };
    r.put("verdict_pass", if problems.is_empty() { 1.0 } else { 0.0 });
    r.note(format!("verdict: {verdict}"));
    let md = markdown(o, &judged, &idle, &after, &samples, &verdict, warm, last);
    print!("{md}");
    if let Some(p) = &o.md {
        if let Err(e) = std::fs::write(p, &md) {
            r.note(format!("writing {}: {e}", p.display()));
        }
    }
    r
}

fn fmt(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[allow(clippy::too_many_arguments)]
fn markdown(
    o: &Opts,
    judged: &[Judged],
    idle: &[NodeSample],
    after: &[NodeSample],
    samples: &[NodeSample],
    verdict: &str,
    warm: (f64, f64),
    last: (f64, f64),
) -> String {
    let mut md = String::new();
    let min = |s: f64| s / 60.0;
    let _ = writeln!(
        md,
        "\n### Soak, {} node(s), {:.0} min: {verdict}\n\nTolerance: the mean of the last window (min {:.0}–{:.0}) may \
         exceed the mean of the window after warm-up (min {:.0}–{:.0}) by {:.0} % (plus 20 for the count series).\n",
        o.ports.len(),
        min(o.duration.as_secs_f64()),
        min(last.0),
        min(last.1),
        min(warm.0),
        min(warm.1),
        o.tolerance * 100.0
    );
    let _ = writeln!(
        md,
        "| node | series | idle | start | warm-up mean | end mean | limit | after load | slope /h | flat |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for j in judged {
        let k = SERIES.iter().position(|(n, _)| *n == j.series).unwrap_or(0);
        let at = |v: &[NodeSample]| v.iter().find(|s| s.node == j.node).map_or(f64::NAN, |s| s.values[k]);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            j.node,
            j.series,
            fmt(at(idle)),
            fmt(j.start),
            fmt(j.warm),
            fmt(j.end),
            fmt(j.limit),
            fmt(at(after)),
            fmt(j.slope_per_h),
            if j.flat { "yes" } else { "**no**" }
        );
    }
    // A timeline: about every tenth of the run.
    let step = (o.duration.as_secs_f64() / 10.0).max(o.sample_every.as_secs_f64());
    let _ = writeln!(md, "\n| t (min) | node | {} |", SERIES.iter().map(|s| s.0).collect::<Vec<_>>().join(" | "));
    let _ = writeln!(md, "|---:|---:|{}", "---:|".repeat(SERIES.len()));
    let mut next = 0.0;
    let mut times: Vec<f64> = samples.iter().map(|s| s.t_s).collect();
    times.dedup();
    for t in times {
        if t + 1e-6 < next && t + o.sample_every.as_secs_f64() <= o.duration.as_secs_f64() {
            continue;
        }
        next = t + step;
        for s in samples.iter().filter(|s| s.t_s == t) {
            let vals: Vec<String> = s.values.iter().map(|v| fmt(*v)).collect();
            let _ = writeln!(md, "| {:.1} | {} | {} |", t / 60.0, s.node, vals.join(" | "));
        }
    }
    md
}
