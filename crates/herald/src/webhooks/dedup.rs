//! `cache_miss` de-duplication (PROTOCOL.md 9.1): one webhook per channel per
//! [`CACHE_MISS_WINDOW`], in O(1) per event and in bounded memory.
//!
//! [`CacheMissDedup`] is one app's table, owned by the dispatcher task (no locks, no clock of
//! its own). A map answers "seen within the window?"; a queue in arrival (= expiry) order lets
//! the expired entries be dropped from its front without scanning the map. At `cap` entries
//! the oldest one is evicted early: a churn of unique channels costs the same per event however
//! many there are, and the price of the cap is at most a repeated `cache_miss` for a channel
//! whose entry was evicted.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The de-duplication window.
pub(crate) const CACHE_MISS_WINDOW: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(crate) struct CacheMissDedup {
    cap: usize,
    /// Channel → when its last `cache_miss` was let through. Every key is in `order` once.
    seen: HashMap<Arc<str>, Instant>,
    /// The keys of `seen`, oldest first.
    order: VecDeque<(Instant, Arc<str>)>,
}

impl CacheMissDedup {
    pub(crate) fn new(cap: usize) -> Self {
        CacheMissDedup { cap: cap.max(1), seen: HashMap::new(), order: VecDeque::new() }
    }

    /// Whether a `cache_miss` on `channel` at `now` is to be sent (and records it if so).
    pub(crate) fn admit(&mut self, channel: &Arc<str>, now: Instant) -> bool {
        while let Some((t, _)) = self.order.front() {
            if now.saturating_duration_since(*t) < CACHE_MISS_WINDOW {
                break;
            }
            self.evict_oldest();
        }
        if self.seen.contains_key(channel) {
            return false;
        }
        if self.seen.len() >= self.cap {
            self.evict_oldest();
        }
        self.seen.insert(channel.clone(), now);
        self.order.push_back((now, channel.clone()));
        true
    }

    fn evict_oldest(&mut self) {
        if let Some((_, key)) = self.order.pop_front() {
            self.seen.remove(&key);
        }
    }

    /// Entries held (for the gauge).
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_is_admitted_once_per_window() {
        let t = Instant::now();
        let mut d = CacheMissDedup::new(100);
        let c: Arc<str> = "cache-a".into();
        assert!(d.admit(&c, t));
        assert!(!d.admit(&c, t + Duration::from_secs(4)));
        assert!(d.admit(&c, t + CACHE_MISS_WINDOW), "expired at the window's end");
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn unique_channels_beyond_the_cap_evict_the_oldest() {
        let t = Instant::now();
        let mut d = CacheMissDedup::new(3);
        let names: Vec<Arc<str>> = (0..10).map(|i| format!("cache-{i}").into()).collect();
        for n in &names {
            assert!(d.admit(n, t));
            assert!(d.len() <= 3);
        }
        assert!(!d.admit(&names[9], t), "recent ones are still de-duplicated");
        assert!(d.admit(&names[0], t), "the oldest was evicted");
        assert_eq!((d.len(), d.order.len()), (3, 3));
        assert!(d.admit(&names[1], t + CACHE_MISS_WINDOW));
        assert_eq!(d.len(), 1, "expired entries leave by time");
    }
}
