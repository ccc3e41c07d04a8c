//! Batching for apps with `batch_webhooks = true` (PROTOCOL.md 11.3): a target's events are
//! collected for `webhook_batch_ms` after the first one, or until `webhook_batch_max` events,
//! whichever comes first, and then sent as one request.
//!
//! [`Batcher`] is a pure structure owned by the dispatcher task (no locks, no clock of its
//! own), generic over how a target is named (the dispatcher's names compare by target key). Events keep their order within a target's batch, and a target's batches are
//! released in order, so the per-channel order survives batching.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use super::payload::EventObject;

#[derive(Debug)]
struct Open {
    deadline: Instant,
    events: Vec<EventObject>,
}

#[derive(Debug)]
pub(crate) struct Batcher<K> {
    window: Duration,
    max: usize,
    /// The open batch of each target.
    open: HashMap<K, Open>,
}

impl<K: Clone + Eq + Hash> Batcher<K> {
    pub(super) fn new(window: Duration, max: usize) -> Self {
        Batcher { window, max: max.max(1), open: HashMap::new() }
    }

    /// Adds an event to `target`'s batch; returns the batch if it is now full.
    /// Adds an event to `target`'s batch; returns the batch if it is now full (under the key
    /// the batch was opened with).
    pub(super) fn push(&mut self, target: K, event: EventObject, now: Instant) -> Option<(K, Vec<EventObject>)> {
        let deadline = now + self.window;
        let open = self.open.entry(target.clone()).or_insert_with(|| Open { deadline, events: Vec::new() });
        open.events.push(event);
        if open.events.len() >= self.max {
            return self.take(&target);
        }
        None
    }

    /// `target`'s open batch, now (so that a delivery made without batching, after a
    /// configuration change, does not overtake it).
    pub(super) fn take(&mut self, target: &K) -> Option<(K, Vec<EventObject>)> {
        if self.open.is_empty() {
            return None;
        }
        self.open.remove_entry(target).map(|(k, o)| (k, o.events))
    }

    /// Batches whose window has passed.
    pub(super) fn due(&mut self, now: Instant) -> Vec<(K, Vec<EventObject>)> {
        let ready: Vec<K> = self.open.iter().filter(|(_, o)| o.deadline <= now).map(|(t, _)| t.clone()).collect();
        ready.iter().filter_map(|t| self.take(t)).collect()
    }

    /// Every open batch, without waiting (shutdown).
    pub(super) fn drain(&mut self) -> Vec<(K, Vec<EventObject>)> {
        self.open.drain().map(|(t, o)| (t, o.events)).collect()
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.open.values().map(|o| o.deadline).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(c: &str) -> EventObject {
        EventObject::simple("channel_occupied", c)
    }

    #[test]
    fn flushes_when_full_or_after_window() {
        let t = Instant::now();
        let mut b = Batcher::new(Duration::from_millis(50), 2);
        assert!(b.push(0, ev("a"), t).is_none());
        let (_, full) = b.push(0, ev("b"), t).expect("full at 2");
        assert_eq!(full.iter().map(|e| e.channel.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(b.push(1, ev("c"), t).is_none());
        assert!(b.due(t + Duration::from_millis(49)).is_empty());
        assert_eq!(b.next_deadline(), Some(t + Duration::from_millis(50)));
        assert_eq!(b.due(t + Duration::from_millis(50)).len(), 1);
        assert!(b.push(2, ev("d"), t).is_none());
        assert_eq!(b.take(&2).map(|(k, e)| (k, e.len())), Some((2, 1)), "taken before its window");
        assert!(b.take(&2).is_none() && b.drain().is_empty());
    }
}
