//! Holding back removals: channel_vacated and member_removed wait `webhook_removal_delay_ms`
//! and are dropped, together with the re-add that cancels them, when the channel is
//! re-occupied (resp. the user rejoins) within the delay (PROTOCOL.md 11.3). A page reload
//! therefore produces neither a vacated+occupied nor a removed+added pair.
//!
//! [`Debouncer`] is a pure state machine driven by the dispatcher task (no locks, no I/O,
//! no clock of its own), generic over how an app is named (the dispatcher uses its id): events go in with the current time, the events to forward now come
//! out, and [`Debouncer::due`] releases the removals whose delay has passed. Pending removals
//! are released in the order they happened (the delay is the same for all), which keeps the
//! per-channel order (member_removed before channel_vacated).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_core::events::ChannelEvent;

/// What a pending removal is about: a channel (vacated) or a user on a channel (removed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key<A> {
    app: A,
    channel: Arc<str>,
    user: Option<Arc<str>>,
}

#[derive(Debug)]
struct Pending<A> {
    due: Instant,
    key: Key<A>,
    event: ChannelEvent,
}

#[derive(Debug)]
pub(crate) struct Debouncer<A> {
    delay: Duration,
    next_seq: u64,
    /// Pending removals by arrival order (= deadline order, the delay being constant).
    pending: BTreeMap<u64, Pending<A>>,
    /// Pending removal per key, to cancel it when the matching re-add arrives.
    index: HashMap<Key<A>, u64>,
}

impl<A: Clone + Eq + Hash> Debouncer<A> {
    pub(super) fn new(delay: Duration) -> Self {
        Debouncer { delay, next_seq: 0, pending: BTreeMap::new(), index: HashMap::new() }
    }

    /// Feeds one event of app `app`; returns it if it is to be forwarded now.
    pub(super) fn on_event(&mut self, app: &A, event: ChannelEvent, now: Instant) -> Option<ChannelEvent> {
        if self.delay.is_zero() {
            return Some(event);
        }
        match &event {
            ChannelEvent::Vacated { channel } => {
                let key = Key { app: app.clone(), channel: channel.clone(), user: None };
                self.hold(key, event, now);
                None
            }
            ChannelEvent::MemberRemoved { channel, user_id } => {
                let key = Key { app: app.clone(), channel: channel.clone(), user: Some(user_id.clone()) };
                self.hold(key, event, now);
                None
            }
            ChannelEvent::Occupied { channel } => {
                let key = Key { app: app.clone(), channel: channel.clone(), user: None };
                if self.cancel(&key) {
                    None
                } else {
                    Some(event)
                }
            }
            ChannelEvent::MemberAdded { channel, user_id } => {
                let key = Key { app: app.clone(), channel: channel.clone(), user: Some(user_id.clone()) };
                if self.cancel(&key) {
                    None
                } else {
                    Some(event)
                }
            }
            _ => Some(event),
        }
    }

    fn hold(&mut self, key: Key<A>, event: ChannelEvent, now: Instant) {
        if self.index.contains_key(&key) {
            // Cannot happen with a well-ordered source (a second removal needs a re-add in
            // between, which cancels the first); keep the first one.
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.index.insert(key.clone(), seq);
        self.pending.insert(seq, Pending { due: now + self.delay, key, event });
    }

    /// Drops the pending removal for `key`; true if there was one.
    fn cancel(&mut self, key: &Key<A>) -> bool {
        match self.index.remove(key) {
            Some(seq) => {
                self.pending.remove(&seq);
                true
            }
            None => false,
        }
    }

    /// Removals whose delay has passed, oldest first.
    pub(super) fn due(&mut self, now: Instant) -> Vec<(A, ChannelEvent)> {
        let mut out = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            if entry.get().due > now {
                break;
            }
            let p = entry.remove();
            self.index.remove(&p.key);
            out.push((p.key.app, p.event));
        }
        out
    }

    /// Every pending removal, oldest first, without waiting (shutdown).
    pub(super) fn drain(&mut self) -> Vec<(A, ChannelEvent)> {
        self.index.clear();
        std::mem::take(&mut self.pending).into_values().map(|p| (p.key.app, p.event)).collect()
    }

    /// When the oldest pending removal is due.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().next().map(|p| p.due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vacated(c: &str) -> ChannelEvent {
        ChannelEvent::Vacated { channel: c.into() }
    }
    fn occupied(c: &str) -> ChannelEvent {
        ChannelEvent::Occupied { channel: c.into() }
    }
    fn removed(c: &str, u: &str) -> ChannelEvent {
        ChannelEvent::MemberRemoved { channel: c.into(), user_id: u.into() }
    }
    fn added(c: &str, u: &str) -> ChannelEvent {
        ChannelEvent::MemberAdded { channel: c.into(), user_id: u.into() }
    }

    #[test]
    fn reoccupied_within_delay_drops_both() {
        let t = Instant::now();
        let mut d = Debouncer::new(Duration::from_secs(3));
        assert_eq!(d.on_event(&0, occupied("a"), t), Some(occupied("a")));
        assert_eq!(d.on_event(&0, vacated("a"), t), None);
        assert_eq!(d.on_event(&0, occupied("a"), t + Duration::from_secs(1)), None);
        assert!(d.due(t + Duration::from_secs(10)).is_empty());
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn removal_released_after_delay_in_order() {
        let t = Instant::now();
        let mut d = Debouncer::new(Duration::from_secs(3));
        assert_eq!(d.on_event(&0, removed("p", "u"), t), None);
        assert_eq!(d.on_event(&0, vacated("p"), t), None);
        assert!(d.due(t + Duration::from_secs(2)).is_empty());
        assert_eq!(d.due(t + Duration::from_secs(3)), vec![(0, removed("p", "u")), (0, vacated("p"))]);
        // a later re-add is a real one
        assert_eq!(d.on_event(&0, added("p", "u"), t + Duration::from_secs(4)), Some(added("p", "u")));
    }

    #[test]
    fn user_rejoining_cancels_only_their_removal() {
        let t = Instant::now();
        let mut d = Debouncer::new(Duration::from_secs(3));
        d.on_event(&0, removed("p", "u1"), t);
        d.on_event(&0, removed("p", "u2"), t);
        assert_eq!(d.on_event(&0, added("p", "u1"), t), None);
        assert_eq!(d.on_event(&1, added("p", "u2"), t), Some(added("p", "u2")), "other app");
        assert_eq!(d.drain(), vec![(0, removed("p", "u2"))]);
    }
}
