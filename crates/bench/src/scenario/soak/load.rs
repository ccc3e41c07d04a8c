//! The `soak` scenario's load: stable subscribers (connected for the whole run, one public
//! channel each, every delivery accounted for), the HTTP publisher (one keep-alive connection
//! per node, a channel always through the same one so its events stay in order), and the
//! churn workers (connect to the next node, subscribe to a public, a private and a presence
//! channel, send client events on the private one, leave the presence channel and join another
//! halfway, disconnect cleanly or drop the socket, reconnect).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::client::{self, decode, now_ns, parse_payload, payload_json, Conn, Failure, Target};
use crate::publisher::{ApiConn, ChannelSeqs};
use crate::sign;

/// Event name of the HTTP publishes.
const EVENT: &str = "soak";
/// Seconds allowed for one connect + handshake, and for one subscribe.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn public_channel(c: usize) -> String {
    format!("soak-pub-{c}")
}

/// Counters of the whole run, bumped by every task.
#[derive(Default)]
pub(crate) struct Counters {
    pub publishes_ok: AtomicU64,
    pub publishes_failed: AtomicU64,
    pub stable_reordered: AtomicU64,
    pub churn_cycles: AtomicU64,
    pub churn_dropped: AtomicU64,
    pub presence_joins: AtomicU64,
    pub presence_leaves: AtomicU64,
    pub client_events_sent: AtomicU64,
    pub client_events_received: AtomicU64,
    /// Connect or subscribe failures, by label. Plain mutexes: held to bump one entry, never
    /// across an await.
    pub setup_failures: Mutex<BTreeMap<String, u64>>,
    /// Connections (stable or churn) that ended without the scenario ending them, by label.
    pub unexpected_closes: Mutex<BTreeMap<String, u64>>,
    /// `pusher:error` frames received, by their data.
    pub error_frames: Mutex<BTreeMap<String, u64>>,
}

fn bump(map: &Mutex<BTreeMap<String, u64>>, key: String) {
    *map.lock().expect("counter lock").entry(key).or_default() += 1;
}

pub(crate) fn total(map: &Mutex<BTreeMap<String, u64>>) -> u64 {
    map.lock().expect("counter lock").values().sum()
}

/// One stable subscriber's accounting.
#[derive(Default)]
pub(crate) struct Stable {
    pub channel: usize,
    pub received: AtomicU64,
    /// Cleared when the connection ended unexpectedly (it reconnects, but its count no longer
    /// matches the channel's publishes).
    pub intact: AtomicBool,
}

async fn connect_subscribe(target: &Target, source: Option<Ipv4Addr>, channel: &str) -> Result<Conn, Failure> {
    let mut conn = client::connect(target, source, SETUP_TIMEOUT).await?;
    tokio::time::timeout(SETUP_TIMEOUT, conn.subscribe(channel, None)).await.unwrap_or(Err(Failure::Timeout))?;
    Ok(conn)
}

/// Connects stable subscriber `i` (to node `i % nodes`); returns its task once subscribed.
pub(crate) async fn stable_subscriber(
    i: usize,
    targets: Arc<Vec<Target>>,
    me: Arc<Stable>,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, Failure> {
    let target = targets[i % targets.len()].clone();
    let channel = public_channel(me.channel);
    let mut conn = connect_subscribe(&target, None, &channel).await?;
    me.intact.store(true, Ordering::Relaxed);
    Ok(tokio::spawn(async move {
        let mut last = 0u64;
        loop {
            tokio::select! {
                r = conn.next_text() => match r {
                    Ok(t) => {
                        let Some(f) = decode(t.as_str()) else { continue };
                        if f.event != EVENT {
                            continue;
                        }
                        if let Some(p) = f.data.as_deref().and_then(parse_payload) {
                            if p.s <= last {
                                counters.stable_reordered.fetch_add(1, Ordering::Relaxed);
                            }
                            last = p.s;
                            me.received.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(f) => {
                        bump(&counters.unexpected_closes, format!("stable {}", f.label()));
                        me.intact.store(false, Ordering::Relaxed);
                        // Stay part of the load: reconnect until it works or the run ends.
                        loop {
                            if *stop.borrow() {
                                return;
                            }
                            match connect_subscribe(&target, None, &channel).await {
                                Ok(c) => {
                                    conn = c;
                                    last = 0;
                                    break;
                                }
                                Err(f) => {
                                    bump(&counters.setup_failures, format!("stable {}", f.label()));
                                    tokio::time::sleep(Duration::from_secs(1)).await;
                                }
                            }
                        }
                    }
                },
                _ = stop.changed() => {
                    conn.close().await;
                    return;
                }
            }
        }
    }))
}

/// Publishes `rate` events/s in total round-robin over the channels of `seqs` until `end`;
/// connection `k` goes to node `k % nodes` and carries channels `c` with `c % conns == k`.
pub(crate) async fn publisher(
    targets: Arc<Vec<Target>>,
    seqs: Arc<ChannelSeqs>,
    rate: f64,
    end: Instant,
    counters: Arc<Counters>,
) {
    let conns = targets.len().max(2).min(seqs.names.len().max(1));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..conns {
        let (target, seqs, counters) = (targets[k % targets.len()].clone(), seqs.clone(), counters.clone());
        let my: Vec<usize> = (0..seqs.names.len()).filter(|c| c % conns == k).collect();
        let period = conns as f64 / rate.max(1e-9);
        tasks.push(tokio::spawn(async move {
            let mut api = None;
            let mut n = 0u64;
            loop {
                // Evenly spread over time: connection k starts k/conns of a period late.
                let due = start + Duration::from_secs_f64(period * (n as f64 + k as f64 / conns as f64));
                if due >= end {
                    return;
                }
                tokio::time::sleep_until(due).await;
                let c = my[n as usize % my.len()];
                n += 1;
                if api.is_none() {
                    api = ApiConn::connect(&target).await.ok();
                }
                let Some(a) = api.as_mut() else {
                    counters.publishes_failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let s = seqs.seq[c].fetch_add(1, Ordering::Relaxed) + 1;
                match a.trigger(&seqs.names[c], EVENT, &payload_json(0, s, now_ns(), 0)).await {
                    Ok(200) => {
                        seqs.ok[c].fetch_add(1, Ordering::Relaxed);
                        counters.publishes_ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {
                        counters.publishes_failed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        counters.publishes_failed.fetch_add(1, Ordering::Relaxed);
                        api = None;
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// The churn workers' shape.
#[derive(Debug, Clone)]
pub(crate) struct ChurnShape {
    pub public_channels: usize,
    pub private_channels: usize,
    pub presence_channels: usize,
    /// Mean time a churn connection stays (uniform in 0..2×).
    pub hold: Duration,
    /// Client events per second per churn connection.
    pub client_rate: f64,
}

fn presence_data(k: usize) -> String {
    serde_json::json!({ "user_id": format!("soak-user-{k}"), "user_info": { "worker": k } }).to_string()
}

async fn subscribe_presence(conn: &mut Conn, target: &Target, channel: &str, data: &str) -> Result<(), Failure> {
    let auth = sign::presence_auth(&target.key, &target.secret, &conn.socket_id, channel, data);
    let msg = serde_json::json!({
        "event": "pusher:subscribe",
        "data": { "channel": channel, "auth": auth, "channel_data": data },
    });
    conn.send(msg.to_string()).await?;
    loop {
        let text = conn.next_text().await?;
        let Some(f) = decode(text.as_str()) else { continue };
        match f.event.as_ref() {
            "pusher_internal:subscription_succeeded" if f.channel.as_deref() == Some(channel) => return Ok(()),
            "pusher:error" | "pusher:subscription_error" => {
                return Err(Failure::Server(format!("presence subscribe refused: {}", f.data.unwrap_or_default())))
            }
            _ => {}
        }
    }
}

/// How one churn cycle ended.
enum CycleEnd {
    /// The scenario's schedule ended it (hold over or run over).
    Planned,
    /// Connect or subscribe failed.
    Setup(Failure),
    /// The connection ended while held.
    Closed(Failure),
}

/// Churn worker `k`: cycles until `end`.
pub(crate) async fn churner(
    k: usize,
    targets: Arc<Vec<Target>>,
    shape: ChurnShape,
    end: Instant,
    counters: Arc<Counters>,
) {
    // Churn connections come from 127.0.0.2..=127.0.0.9 so their TIME_WAIT ports never compete
    // with the stable subscribers' source address.
    let source = Some(Ipv4Addr::new(127, 0, 0, 2 + (k % 8) as u8));
    // The workers start spread over the first 10 s, not as one burst.
    tokio::time::sleep(Duration::from_secs_f64(10.0 * rand::random::<f64>())).await;
    let mut cycle = 0usize;
    while Instant::now() < end {
        cycle += 1;
        let target = &targets[(k + cycle) % targets.len()];
        match churn_cycle(k, cycle, target, source, &shape, end, &counters).await {
            CycleEnd::Planned => {
                counters.churn_cycles.fetch_add(1, Ordering::Relaxed);
            }
            CycleEnd::Setup(f) => {
                bump(&counters.setup_failures, format!("churn {}", f.label()));
            }
            CycleEnd::Closed(f) => {
                bump(&counters.unexpected_closes, format!("churn {}", f.label()));
            }
        }
        tokio::time::sleep(Duration::from_millis(rand::random_range(0..500))).await;
    }
}

async fn churn_cycle(
    k: usize,
    cycle: usize,
    target: &Target,
    source: Option<Ipv4Addr>,
    shape: &ChurnShape,
    end: Instant,
    counters: &Counters,
) -> CycleEnd {
    let public = public_channel(rand::random_range(0..shape.public_channels.max(1)));
    let private = format!("private-soak-{}", rand::random_range(0..shape.private_channels.max(1)));
    let mut presence = format!("presence-soak-{}", rand::random_range(0..shape.presence_channels.max(1)));
    let data = presence_data(k);
    let setup = async {
        let mut conn = client::connect(target, source, SETUP_TIMEOUT).await?;
        let auth = sign::channel_auth(&target.key, &target.secret, &conn.socket_id, &private);
        tokio::time::timeout(SETUP_TIMEOUT, async {
            conn.subscribe(&public, None).await?;
            conn.subscribe(&private, Some(auth)).await?;
            subscribe_presence(&mut conn, target, &presence, &data).await
        })
        .await
        .unwrap_or(Err(Failure::Timeout))?;
        Ok::<Conn, Failure>(conn)
    };
    let mut conn = match setup.await {
        Ok(c) => c,
        Err(f) => return CycleEnd::Setup(f),
    };
    counters.presence_joins.fetch_add(1, Ordering::Relaxed);
    let held = shape.hold.mul_f64(2.0 * rand::random::<f64>());
    let until = (Instant::now() + held).min(end);
    let halfway = Instant::now() + held / 2;
    let mut switched = false;
    let period = Duration::from_secs_f64(1.0 / shape.client_rate.max(1e-3));
    let mut next_event = Instant::now() + period.mul_f64(rand::random::<f64>());
    let mut sent = 0u64;
    loop {
        let wake = until.min(next_event).min(if switched { until } else { halfway });
        match tokio::time::timeout_at(wake, conn.next_text()).await {
            Ok(Ok(t)) => {
                let Some(f) = decode(t.as_str()) else { continue };
                if f.event.starts_with("client-") {
                    counters.client_events_received.fetch_add(1, Ordering::Relaxed);
                } else if f.event == "pusher:error" {
                    bump(&counters.error_frames, f.data.unwrap_or_default().into_owned());
                }
                continue;
            }
            Ok(Err(f)) => return CycleEnd::Closed(f),
            Err(_) => {}
        }
        let now = Instant::now();
        if now >= until {
            break;
        }
        if !switched && now >= halfway {
            // Leave the presence channel and join another one.
            switched = true;
            if let Err(f) = conn.unsubscribe(&presence).await {
                return CycleEnd::Closed(f);
            }
            counters.presence_leaves.fetch_add(1, Ordering::Relaxed);
            presence = format!("presence-soak-{}", rand::random_range(0..shape.presence_channels.max(1)));
            match tokio::time::timeout(SETUP_TIMEOUT, subscribe_presence(&mut conn, target, &presence, &data)).await {
                Ok(Ok(())) => {
                    counters.presence_joins.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Err(f)) => return CycleEnd::Closed(f),
                Err(_) => return CycleEnd::Closed(Failure::Timeout),
            }
        }
        if now >= next_event {
            next_event += period;
            sent += 1;
            let payload = payload_json(k as u32, sent, now_ns(), 0);
            let msg = serde_json::json!({ "event": "client-soak", "channel": private, "data": payload });
            if let Err(f) = conn.send(msg.to_string()).await {
                return CycleEnd::Closed(f);
            }
            counters.client_events_sent.fetch_add(1, Ordering::Relaxed);
        }
    }
    counters.presence_leaves.fetch_add(1, Ordering::Relaxed);
    if cycle.is_multiple_of(4) {
        // A quarter of the connections vanish without a close handshake (a dropped socket).
        counters.churn_dropped.fetch_add(1, Ordering::Relaxed);
        drop(conn);
    } else {
        for ch in [&public, &private, &presence] {
            if conn.unsubscribe(ch).await.is_err() {
                break;
            }
        }
        conn.close().await;
    }
    CycleEnd::Planned
}
