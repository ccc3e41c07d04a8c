//! Per-IP rate limit on new WebSocket connections (`ws_connect_rate_per_ip`, off by default):
//! a token bucket per client address (IPv6: per /64, what one subscriber is usually given),
//! `ws_connect_burst_per_ip` deep, refilled at the configured rate. An upgrade without a token
//! gets HTTP 429.
//!
//! The table is bounded: at most [`MAX_TRACKED`] addresses. A bucket that has refilled is the
//! same as no bucket, so pruning drops those; it runs when the table is full (at most once per
//! [`PRUNE_EVERY`], so a flood of new addresses cannot make every upgrade scan it) and every
//! [`IDLE_PRUNE_EVERY`] otherwise. When the table is full of busy addresses, a new address is
//! let through untracked (counted): refusing it would let whoever fills the table lock every
//! new client out, while the pending cap and `max_connections` still bound what it can hold.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use metrics::Counter;
use parking_lot::Mutex;
use tokio::time::Instant;

/// Addresses tracked at most (~60 bytes each).
pub(crate) const MAX_TRACKED: usize = 100_000;
/// Least time between two prunes of a full table.
const PRUNE_EVERY: Duration = Duration::from_secs(1);
/// Prune interval of a table that is not full (returns the memory of past bursts).
const IDLE_PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The verdict for one upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allowed,
    /// Over the limit: 429.
    Limited,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Table {
    buckets: HashMap<IpAddr, Bucket>,
    pruned_at: Instant,
}

pub(crate) struct ConnectLimiter {
    /// Tokens per second.
    rate: f64,
    burst: f64,
    /// Address → bucket. A mutex (parking_lot): one short critical section per upgrade (a map
    /// lookup and some arithmetic) and a prune pass over at most `MAX_TRACKED` entries at most
    /// once per `PRUNE_EVERY`; never held across an await.
    table: Mutex<Table>,
    /// `herald_ws_rate_limited_total`: upgrades answered 429.
    limited: Counter,
    /// `herald_ws_rate_limit_untracked_total`: upgrades let through because the table was full.
    untracked: Counter,
}

impl ConnectLimiter {
    /// `None` when `rate` is 0 (the limit is off).
    pub(crate) fn new(rate: u64, burst: u64, limited: Counter, untracked: Counter) -> Option<Self> {
        (rate > 0).then(|| ConnectLimiter {
            rate: rate as f64,
            burst: burst as f64,
            table: Mutex::new(Table { buckets: HashMap::new(), pruned_at: Instant::now() }),
            limited,
            untracked,
        })
    }

    /// Seconds until one more token (for `Retry-After`).
    pub(crate) fn retry_after_secs(&self) -> u64 {
        (1.0 / self.rate).ceil().max(1.0) as u64
    }

    /// Takes a token for `ip` if it has one.
    pub(crate) fn check(&self, ip: IpAddr) -> Verdict {
        let verdict = self.check_at(key(ip), Instant::now());
        if verdict == Verdict::Limited {
            self.limited.increment(1);
        }
        verdict
    }

    fn check_at(&self, key: IpAddr, now: Instant) -> Verdict {
        let mut table = self.table.lock();
        let since_prune = now.duration_since(table.pruned_at);
        let full = table.buckets.len() >= MAX_TRACKED && !table.buckets.contains_key(&key);
        if (full && since_prune >= PRUNE_EVERY) || since_prune >= IDLE_PRUNE_EVERY {
            let (rate, burst) = (self.rate, self.burst);
            table.buckets.retain(|_, b| refill(b, now, rate, burst) < burst);
            table.pruned_at = now;
        }
        if table.buckets.len() >= MAX_TRACKED && !table.buckets.contains_key(&key) {
            self.untracked.increment(1);
            return Verdict::Allowed;
        }
        let bucket = table.buckets.entry(key).or_insert(Bucket { tokens: self.burst, at: now });
        let tokens = refill(bucket, now, self.rate, self.burst);
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            Verdict::Allowed
        } else {
            bucket.tokens = tokens;
            Verdict::Limited
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.table.lock().buckets.len()
    }
}

/// Brings `b` up to `now` and returns its tokens.
fn refill(b: &mut Bucket, now: Instant, rate: f64, burst: f64) -> f64 {
    let elapsed = now.duration_since(b.at).as_secs_f64();
    b.at = now;
    b.tokens = (b.tokens + elapsed * rate).min(burst);
    b.tokens
}

/// IPv4 addresses as they are; IPv6 by their /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: u64, burst: u64) -> ConnectLimiter {
        ConnectLimiter::new(rate, burst, Counter::noop(), Counter::noop()).unwrap()
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(n.into())
    }

    #[test]
    fn burst_then_limited_then_refilled() {
        let l = limiter(2, 3);
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check_at(ip(1), t), Verdict::Allowed);
        }
        assert_eq!(l.check_at(ip(1), t), Verdict::Limited);
        assert_eq!(l.check_at(ip(2), t), Verdict::Allowed, "another address has its own bucket");
        assert_eq!(l.check_at(ip(1), t + Duration::from_millis(500)), Verdict::Allowed);
    }

    #[test]
    fn ipv6_addresses_share_their_64() {
        let l = limiter(1, 1);
        let t = Instant::now();
        assert_eq!(l.check_at(key("2001:db8:1:2::1".parse().unwrap()), t), Verdict::Allowed);
        assert_eq!(l.check_at(key("2001:db8:1:2::ffff".parse().unwrap()), t), Verdict::Limited);
        assert_eq!(l.check_at(key("2001:db8:1:3::1".parse().unwrap()), t), Verdict::Allowed);
    }

    #[test]
    fn table_stays_bounded_and_refilled_entries_are_pruned() {
        let l = limiter(1, 2);
        let t = Instant::now();
        for n in 0..MAX_TRACKED as u32 + 10 {
            assert_eq!(l.check_at(ip(n), t), Verdict::Allowed);
        }
        assert_eq!(l.tracked(), MAX_TRACKED, "full: new addresses pass untracked");
        // Two seconds later every bucket has refilled: the next new address prunes them all.
        assert_eq!(l.check_at(ip(u32::MAX), t + Duration::from_secs(2)), Verdict::Allowed);
        assert_eq!(l.tracked(), 1);
    }
}
