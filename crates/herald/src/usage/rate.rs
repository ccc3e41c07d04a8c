//! `max_api_requests_per_second`: one token bucket per app, per node.
//!
//! Per node, not cluster-wide: a cluster-wide bucket would cost a Redis round trip on every
//! API request and make the API fail when Redis is down, while the point of the limit is to
//! stop one app's burst from taking a node's CPU. Behind a load balancer spreading requests
//! over N nodes, an app gets up to N times its rate cluster-wide (docs/OPERATIONS.md).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A bucket: `rate` tokens per second, holding at most `rate` (the burst).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every app that has a rate limit.
#[derive(Debug, Default)]
pub(crate) struct Buckets {
    /// By app id. parking_lot mutex, held for one map lookup and a few float operations per
    /// API request of an app with a limit; never across an await.
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Buckets {
    /// Takes one token of `app_id`'s bucket at `rate` per second. `Err(wait)`: empty, the next
    /// token is due after `wait`.
    pub(crate) fn take(&self, app_id: &str, rate: u64, now: Instant) -> Result<(), Duration> {
        let rate = rate.max(1) as f64;
        let mut buckets = self.buckets.lock();
        let b = buckets.entry(app_id.to_owned()).or_insert(Bucket { tokens: rate, at: now });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(rate);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_burst_passes_then_requests_wait_for_the_refill() {
        let buckets = Buckets::default();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(buckets.take("a", 5, t0).is_ok());
        }
        let wait = buckets.take("a", 5, t0).expect_err("burst used up");
        assert!(wait <= Duration::from_millis(200) && wait > Duration::ZERO, "{wait:?}");
        assert!(buckets.take("b", 5, t0).is_ok(), "apps have their own buckets");
        assert!(buckets.take("a", 5, t0 + Duration::from_millis(200)).is_ok(), "one token refilled");
        assert!(buckets.take("a", 5, t0 + Duration::from_millis(200)).is_err());
    }
}
