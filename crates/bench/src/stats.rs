//! Delivery accounting shared by all subscriber tasks: end-to-end latency histogram (µs),
//! messages received, out-of-order and gap counts, and the time of the last delivery. Sharded
//! by subscriber index so the two worker threads rarely contend on one lock.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use hdrhistogram::Histogram;

const SHARDS: usize = 16;

#[derive(Clone)]
struct Shard {
    hist: Histogram<u64>,
    received: u64,
    reordered: u64,
    gaps: u64,
    last_ns: u64,
}

impl Shard {
    fn new() -> Shard {
        Shard {
            hist: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"),
            received: 0,
            reordered: 0,
            gaps: 0,
            last_ns: 0,
        }
    }
}

/// Latency and delivery counters.
pub(crate) struct Stats {
    shards: Vec<Mutex<Shard>>,
    /// Subscribers whose connection ended before the scenario stopped it.
    pub disconnects: AtomicU64,
    /// `pusher:error` frames received (e.g. refused client events).
    pub errors: AtomicU64,
}

/// A merged snapshot of [`Stats`].
pub(crate) struct Snapshot {
    pub hist: Histogram<u64>,
    pub received: u64,
    pub reordered: u64,
    pub gaps: u64,
    pub last_ns: u64,
}

impl Snapshot {
    /// Latency quantile in ms.
    pub(crate) fn ms(&self, q: f64) -> f64 {
        if self.hist.is_empty() {
            return 0.0;
        }
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
    pub(crate) fn max_ms(&self) -> f64 {
        self.hist.max() as f64 / 1000.0
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect(),
            disconnects: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }
}

/// Per-subscriber sequence tracker for one stream (a channel, or one sender in a channel).
#[derive(Default, Clone, Copy)]
pub(crate) struct Seq {
    next: u64,
}

/// What a sequence number said about ordering.
pub(crate) enum Order {
    Next,
    Gap,
    Reordered,
}

impl Seq {
    /// Sequences start at 1; a first message with a higher number is not a gap (a subscriber
    /// may join a stream already running).
    pub(crate) fn observe(&mut self, s: u64) -> Order {
        if self.next == 0 {
            self.next = s + 1;
            return Order::Next;
        }
        if s < self.next {
            return Order::Reordered;
        }
        let gap = s > self.next;
        self.next = s + 1;
        if gap {
            Order::Gap
        } else {
            Order::Next
        }
    }
}

impl Stats {
    /// Records one delivery by subscriber `who` sent at `sent_ns` and received at `now_ns`.
    pub(crate) fn record(&self, who: usize, sent_ns: u64, now_ns: u64, order: Order) {
        let mut s = self.shards[who % SHARDS].lock().expect("stats lock");
        let us = now_ns.saturating_sub(sent_ns) / 1000;
        let _ = s.hist.record(us.clamp(1, 600_000_000));
        s.received += 1;
        match order {
            Order::Next => {}
            Order::Gap => s.gaps += 1,
            Order::Reordered => s.reordered += 1,
        }
        if now_ns > s.last_ns {
            s.last_ns = now_ns;
        }
    }

    /// Messages received so far (cheap enough to poll while draining).
    pub(crate) fn received(&self) -> u64 {
        self.shards.iter().map(|s| s.lock().expect("stats lock").received).sum()
    }

    /// Merges the shards and resets them (the start of a new measurement phase).
    pub(crate) fn take(&self) -> Snapshot {
        let mut out = Snapshot { hist: Shard::new().hist, received: 0, reordered: 0, gaps: 0, last_ns: 0 };
        for s in &self.shards {
            let taken = std::mem::replace(&mut *s.lock().expect("stats lock"), Shard::new());
            let _ = out.hist.add(&taken.hist);
            out.received += taken.received;
            out.reordered += taken.reordered;
            out.gaps += taken.gaps;
            out.last_ns = out.last_ns.max(taken.last_ns);
        }
        out
    }
}
