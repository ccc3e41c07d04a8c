//! Opening many connections at a paced rate: source-address spreading over 127.0.0.0/8 past a
//! threshold, a bound on in-flight handshakes, failure classification, and an early stop (with
//! the reason) when the file limit is hit or failures pile up, so a scenario reports instead
//! of hanging. Each ready connection (connected and subscribed) is handed to a caller-supplied
//! task; [`Fleet`] keeps the tasks and stops them together.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::client::{self, Conn, Failure, Target};
use crate::sign;

/// How to open the connections.
#[derive(Debug, Clone)]
pub(crate) struct RampOpts {
    pub count: usize,
    /// New connections per second.
    pub rate: f64,
    pub channels: usize,
    pub channel_prefix: String,
    /// Channel names are `private-{prefix}{i}` and subscriptions are signed.
    pub private: bool,
    /// Index from which connections are bound to 127.0.0.2, 127.0.0.3, ...
    pub spread_after: usize,
    /// Connections per source address once spreading.
    pub per_source: usize,
    pub timeout: Duration,
    pub max_in_flight: usize,
    /// Stop after this many consecutive failures.
    pub max_consecutive_failures: u64,
}

impl RampOpts {
    pub(crate) fn channel_name(&self, i: usize) -> String {
        let ch = i % self.channels.max(1);
        if self.private {
            format!("private-{}{ch}", self.channel_prefix)
        } else {
            format!("{}{ch}", self.channel_prefix)
        }
    }

    /// Source address for connection `i`: `None` (kernel default 127.0.0.1) below the
    /// threshold, then 127.0.0.2, 127.0.0.3, ... each carrying `per_source` connections.
    pub(crate) fn source(&self, i: usize) -> Option<Ipv4Addr> {
        if i < self.spread_after {
            return None;
        }
        let n = (i - self.spread_after) / self.per_source.max(1) + 2;
        let n = n.min(0x00ff_fffe) as u32;
        Some(Ipv4Addr::from(0x7f00_0000u32 | n))
    }
}

/// Outcome of a ramp.
pub(crate) struct RampResult {
    pub opened: usize,
    pub attempted: usize,
    pub failures: BTreeMap<String, u64>,
    pub stopped_early: Option<String>,
    pub elapsed: Duration,
    /// Connect + handshake + subscribe time per connection, µs.
    pub setup: Histogram<u64>,
    /// Subscribers per channel index.
    pub per_channel: Vec<u64>,
}

/// The task that owns a ready connection: (index, channel, connection, stop signal).
pub(crate) type Holder = Arc<dyn Fn(usize, String, Conn, watch::Receiver<bool>) -> JoinHandle<()> + Send + Sync>;

/// Connections handed to holder tasks, stopped together.
pub(crate) struct Fleet {
    stop_tx: watch::Sender<bool>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet { stop_tx: watch::channel(false).0, tasks: Arc::default() }
    }
}

impl Fleet {
    /// Stops every holder task and waits (at most `grace`) for them to end.
    pub(crate) async fn stop(&self, grace: Duration) {
        let _ = self.stop_tx.send(true);
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().expect("fleet lock"));
        let deadline = tokio::time::Instant::now() + grace;
        for t in tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout_at(deadline, t).await.is_err() {
                abort.abort();
            }
        }
    }

    /// Opens `opts.count` connections, subscribing each to its channel, and hands each to `holder`.
    pub(crate) async fn ramp(&self, target: &Target, opts: &RampOpts, holder: Holder) -> RampResult {
        let start = Instant::now();
        let sem = Arc::new(Semaphore::new(opts.max_in_flight.max(1)));
        let stop = Arc::new(AtomicBool::new(false));
        let reason: Arc<Mutex<Option<String>>> = Arc::default();
        let consecutive = Arc::new(AtomicU64::new(0));
        let failures: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
        let setup = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("bounds")));
        let per_channel: Arc<Vec<AtomicU64>> = Arc::new((0..opts.channels.max(1)).map(|_| AtomicU64::new(0)).collect());
        let opened = Arc::new(AtomicU64::new(0));
        let mut attempts = Vec::new();
        let period = if opts.rate > 0.0 { 1.0 / opts.rate } else { 0.0 };
        let mut attempted = 0;
        for i in 0..opts.count {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let due = start + Duration::from_secs_f64(period * i as f64);
            tokio::time::sleep_until(due.into()).await;
            let permit = sem.clone().acquire_owned().await.expect("semaphore open");
            if stop.load(Ordering::Relaxed) {
                break;
            }
            attempted += 1;
            let (target, opts2, holder) = (target.clone(), opts.clone(), holder.clone());
            let (stop, reason, consecutive, failures, setup, per_channel, opened) = (
                stop.clone(),
                reason.clone(),
                consecutive.clone(),
                failures.clone(),
                setup.clone(),
                per_channel.clone(),
                opened.clone(),
            );
            let stop_rx = self.stop_tx.subscribe();
            let tasks = self.tasks.clone();
            attempts.push(tokio::spawn(async move {
                let t0 = Instant::now();
                let channel = opts2.channel_name(i);
                let res = open_one(&target, &opts2, i, &channel).await;
                drop(permit);
                match res {
                    Ok(conn) => {
                        consecutive.store(0, Ordering::Relaxed);
                        let _ = setup.lock().expect("lock").record((t0.elapsed().as_micros() as u64).max(1));
                        per_channel[i % per_channel.len()].fetch_add(1, Ordering::Relaxed);
                        opened.fetch_add(1, Ordering::Relaxed);
                        let h = holder(i, channel, conn, stop_rx);
                        tasks.lock().expect("lock").push(h);
                    }
                    Err(f) => {
                        *failures.lock().expect("lock").entry(f.label()).or_default() += 1;
                        let n = consecutive.fetch_add(1, Ordering::Relaxed) + 1;
                        let fatal = match f {
                            Failure::FileLimit => Some(format!(
                                "this process hit its open-file limit (EMFILE) after {} connections",
                                opened.load(Ordering::Relaxed)
                            )),
                            Failure::NoPort => Some("no ephemeral port left (EADDRNOTAVAIL): spread source addresses or widen net.ipv4.ip_local_port_range".into()),
                            _ if n >= opts2.max_consecutive_failures => Some(format!(
                                "{n} consecutive failures (last: {}); the server is likely at its file or connection limit",
                                f.label()
                            )),
                            _ => None,
                        };
                        if let Some(r) = fatal {
                            if !stop.swap(true, Ordering::Relaxed) {
                                *reason.lock().expect("lock") = Some(r);
                            }
                        }
                    }
                }
            }));
        }
        for a in attempts {
            let _ = a.await;
        }
        let failures = failures.lock().expect("lock").clone();
        let setup = setup.lock().expect("lock").clone();
        let stopped_early = reason.lock().expect("lock").take();
        RampResult {
            opened: opened.load(Ordering::Relaxed) as usize,
            attempted,
            failures,
            stopped_early,
            elapsed: start.elapsed(),
            setup,
            per_channel: per_channel.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
        }
    }

    /// Number of holder tasks still running.
    pub(crate) fn alive(&self) -> usize {
        self.tasks.lock().expect("lock").iter().filter(|t| !t.is_finished()).count()
    }
}

async fn open_one(target: &Target, opts: &RampOpts, i: usize, channel: &str) -> Result<Conn, Failure> {
    let deadline = opts.timeout;
    tokio::time::timeout(deadline, async {
        let mut conn = client::connect(target, opts.source(i), deadline).await?;
        let auth = opts.private.then(|| sign::channel_auth(&target.key, &target.secret, &conn.socket_id, channel));
        conn.subscribe(channel, auth).await?;
        Ok(conn)
    })
    .await
    .unwrap_or(Err(Failure::Timeout))
}
