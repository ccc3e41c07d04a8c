//! Per-app event queues between the socket hot path and the dispatcher, so that one app's
//! flood delays or drops only its own webhooks.
//!
//! Each app with webhook targets has its own bounded queue (`webhook_queue_size` events): the
//! sink `try_send`s into it (the sending end lives in the app's `routes::AppState`) and a full
//! queue drops the event for that app only. [`Inbox`] is the dispatcher's end: one [`Lane`]
//! per app, drained round-robin, at most [`QUANTUM`] events of one app per turn, so an app
//! with a full queue gets no more of the dispatcher's time than an app with one event.
//!
//! Apps come and go at run time (`Webhooks::set_apps`): a new app's lane is handed to the
//! dispatcher over an unbounded channel ([`LaneSender`]) before the app can receive events,
//! and [`Inbox::drain`] adopts new lanes first. A lane whose sending ends are gone (the app
//! has no targets any more and its queue was forgotten, see `routes.rs`) and that is empty is
//! retired, with its `cache_miss` table. A shared [`Notify`] wakes the dispatcher; it keeps one permit, so an
//! event sent between the dispatcher's last look and its wait is not missed.

use std::sync::Arc;

use herald_core::events::ChannelEvent;
use tokio::sync::{mpsc, Notify};

use super::dedup::CacheMissDedup;

/// Events taken from one app's queue per round-robin turn.
pub(crate) const QUANTUM: usize = 32;

/// The dispatcher's end of one app's queue, with the app's `cache_miss` de-duplication table
/// (per-app state the dispatcher alone uses, so it lives and dies with the lane).
#[derive(Debug)]
pub(crate) struct Lane {
    app_id: Arc<str>,
    rx: mpsc::Receiver<ChannelEvent>,
    dedup: CacheMissDedup,
}

/// Hands new lanes to the dispatcher.
pub(crate) type LaneSender = mpsc::UnboundedSender<Lane>;

/// A new queue of `capacity` events for `app_id`: the sending end, and the lane to hand to
/// the dispatcher (with a `cache_miss` table of `dedup_max` channels).
pub(crate) fn lane(app_id: Arc<str>, capacity: usize, dedup_max: usize) -> (mpsc::Sender<ChannelEvent>, Lane) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (tx, Lane { app_id, rx, dedup: CacheMissDedup::new(dedup_max) })
}

/// The dispatcher's end: the lanes, where the last round-robin turn stopped, and new lanes.
pub(crate) struct Inbox {
    lanes: Vec<Lane>,
    new: mpsc::UnboundedReceiver<Lane>,
    pub ready: Arc<Notify>,
    cursor: usize,
}

/// An inbox without lanes, the sender of new lanes, and the wake-up shared with the sink.
pub(crate) fn inbox() -> (LaneSender, Arc<Notify>, Inbox) {
    let ready = Arc::new(Notify::new());
    let (tx, new) = mpsc::unbounded_channel();
    (tx, ready.clone(), Inbox { lanes: Vec::new(), new, ready, cursor: 0 })
}

impl Inbox {
    /// Takes up to `budget` events, round-robin over the apps, at most [`QUANTUM`] of one app
    /// per turn; calls `f(app id, app's cache_miss table, event)` for each. Adopts new lanes
    /// and retires closed empty ones first. Returns how many events were taken.
    pub(crate) fn drain(
        &mut self,
        budget: usize,
        mut f: impl FnMut(&Arc<str>, &mut CacheMissDedup, ChannelEvent),
    ) -> usize {
        while let Ok(lane) = self.new.try_recv() {
            self.lanes.push(lane);
        }
        // Closed = every sender dropped, so nothing can arrive any more.
        self.lanes.retain(|l| !(l.rx.is_closed() && l.rx.is_empty()));
        let n = self.lanes.len();
        if n == 0 {
            return 0;
        }
        self.cursor %= n;
        let mut taken = 0;
        loop {
            let mut any = false;
            for _ in 0..n {
                let lane = &mut self.lanes[self.cursor];
                self.cursor = (self.cursor + 1) % n;
                for _ in 0..QUANTUM {
                    if taken == budget {
                        return taken;
                    }
                    match lane.rx.try_recv() {
                        Ok(ev) => {
                            f(&lane.app_id, &mut lane.dedup, ev);
                            taken += 1;
                            any = true;
                        }
                        Err(_) => break,
                    }
                }
            }
            if !any {
                return taken;
            }
        }
    }

    /// Channels held by the `cache_miss` tables of all lanes (for the gauge).
    pub(crate) fn dedup_entries(&self) -> usize {
        self.lanes.iter().map(|l| l.dedup.len()).sum()
    }

    /// Lanes held (tests).
    #[cfg(test)]
    pub(crate) fn lanes(&self) -> usize {
        self.lanes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(c: &str) -> ChannelEvent {
        ChannelEvent::Occupied { channel: c.into() }
    }

    #[test]
    fn a_full_queue_drops_only_for_its_app_and_drain_alternates() {
        let (lanes, _ready, mut rx) = inbox();
        let (a, lane_a) = lane("a".into(), 100, 10);
        let (b, lane_b) = lane("b".into(), 100, 10);
        lanes.send(lane_a).unwrap();
        lanes.send(lane_b).unwrap();
        for i in 0..100 {
            assert!(a.try_send(ev(&format!("flood-{i}"))).is_ok());
        }
        assert!(a.try_send(ev("over")).is_err(), "app a's queue is full");
        assert!(b.try_send(ev("b-1")).is_ok(), "app b still has room");
        assert!(b.try_send(ev("b-2")).is_ok());
        let mut seen = Vec::new();
        assert_eq!(rx.drain(40, |app, _, _| seen.push(app.to_string())), 40);
        let first_b = seen.iter().position(|a| a == "b").expect("app b served within the first pass");
        assert!(first_b <= QUANTUM, "{seen:?}");
        assert_eq!(seen.iter().filter(|a| *a == "b").count(), 2);
        assert_eq!(rx.drain(1000, |_, _, _| {}), 62);
        assert_eq!(rx.drain(1000, |_, _, _| {}), 0);
    }

    #[test]
    fn a_lane_is_retired_once_its_sender_is_gone_and_it_is_drained() {
        let (lanes, _ready, mut rx) = inbox();
        let (a, lane_a) = lane("a".into(), 10, 10);
        lanes.send(lane_a).unwrap();
        a.try_send(ev("x")).unwrap();
        drop(a);
        let mut got = Vec::new();
        assert_eq!(rx.drain(10, |_, _, e| got.push(e)), 1, "queued events outlive the sender");
        assert_eq!(got, [ev("x")]);
        assert_eq!(rx.lanes(), 1);
        assert_eq!(rx.drain(10, |_, _, _| {}), 0);
        assert_eq!(rx.lanes(), 0, "closed and empty: retired");
    }
}
