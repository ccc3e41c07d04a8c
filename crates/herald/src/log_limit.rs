//! Rate-limited log lines for events a client can cause over and over.
//!
//! A line a client can trigger (a slow consumer disconnected, say) must not let a flood of such
//! clients flood the log as well. [`LogLimit`] admits one line per interval and tells the line
//! how many were held back since the previous one, so the log keeps a count instead of every
//! occurrence; the metrics keep the exact totals.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One line per `interval`, with the number suppressed since the last one.
#[derive(Debug)]
pub(crate) struct LogLimit {
    /// Monotonic start every `next_ms` is measured from.
    epoch: Instant,
    interval_ms: u64,
    /// When the next line may be written, in ms since `epoch`. An atomic, not a lock: callers
    /// are connection tasks on any worker, and a lost race only means one fewer line.
    next_ms: AtomicU64,
    /// Occurrences not logged since the last line.
    suppressed: AtomicU64,
}

impl LogLimit {
    pub(crate) fn new(interval: Duration) -> Self {
        LogLimit {
            epoch: Instant::now(),
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            next_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Records one occurrence at `now`. `Some(n)`: write the line now, mentioning the `n`
    /// occurrences held back since the previous one; `None`: suppressed (counted).
    pub(crate) fn admit_at(&self, now: Instant) -> Option<u64> {
        let now_ms = u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Acquire);
        let due = now_ms >= next
            && self
                .next_ms
                .compare_exchange(next, now_ms.saturating_add(self.interval_ms), Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if due {
            Some(self.suppressed.swap(0, Ordering::AcqRel))
        } else {
            self.suppressed.fetch_add(1, Ordering::AcqRel);
            None
        }
    }

    /// [`LogLimit::admit_at`] now.
    pub(crate) fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_carrying_the_count_held_back() {
        let limit = LogLimit::new(Duration::from_secs(10));
        let t0 = limit.epoch;
        assert_eq!(limit.admit_at(t0), Some(0), "the first occurrence is written");
        for s in 1..=5 {
            assert_eq!(limit.admit_at(t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(limit.admit_at(t0 + Duration::from_secs(10)), Some(5), "the next line says 5 were held back");
        assert_eq!(limit.admit_at(t0 + Duration::from_secs(11)), None);
        assert_eq!(limit.admit_at(t0 + Duration::from_secs(60)), Some(1));
    }
}
