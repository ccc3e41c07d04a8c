//! Per-app event queues between the socket hot path and the dispatcher, so that one app's
//! flood delays or drops only its own webhooks.
//!
//! Each app has its own bounded queue (`webhook_queue_size` events): the sink `try_send`s into
//! it and a full queue drops the event for that app only. [`Inbox`] is the dispatcher's end:
//! it drains the queues round-robin, at most [`QUANTUM`] events of one app per turn, so an app
//! with a full queue gets no more of the dispatcher's time than an app with one event. A shared
//! [`Notify`] wakes the dispatcher; it keeps one permit, so an event sent between the
//! dispatcher's last look and its wait is not missed.

use std::sync::Arc;

use herald_core::events::ChannelEvent;
use tokio::sync::{mpsc, Notify};

/// Events taken from one app's queue per round-robin turn.
pub(crate) const QUANTUM: usize = 32;

/// The sending ends (one per app index) and the dispatcher's wake-up.
pub(crate) struct Senders {
    pub queues: Vec<mpsc::Sender<ChannelEvent>>,
    pub ready: Arc<Notify>,
}

impl Senders {
    /// Queues `event` for app `app` without waiting; false if that app's queue is full.
    pub(crate) fn try_send(&self, app: usize, event: ChannelEvent) -> bool {
        let Some(q) = self.queues.get(app) else { return false };
        if q.try_send(event).is_err() {
            return false;
        }
        self.ready.notify_one();
        true
    }
}

/// The dispatcher's end: the receivers, and where the last round-robin turn stopped.
pub(crate) struct Inbox {
    queues: Vec<mpsc::Receiver<ChannelEvent>>,
    pub ready: Arc<Notify>,
    cursor: usize,
}

/// One bounded queue of `capacity` per app.
pub(crate) fn per_app(apps: usize, capacity: usize) -> (Senders, Inbox) {
    let ready = Arc::new(Notify::new());
    let (tx, rx): (Vec<_>, Vec<_>) = (0..apps).map(|_| mpsc::channel(capacity.max(1))).unzip();
    (Senders { queues: tx, ready: ready.clone() }, Inbox { queues: rx, ready, cursor: 0 })
}

impl Inbox {
    /// Takes up to `budget` events, round-robin over the apps, at most [`QUANTUM`] of one app
    /// per turn; calls `f(app, event)` for each. Returns how many were taken.
    pub(crate) fn drain(&mut self, budget: usize, mut f: impl FnMut(usize, ChannelEvent)) -> usize {
        let n = self.queues.len();
        let mut taken = 0;
        loop {
            let mut any = false;
            for _ in 0..n {
                let app = self.cursor;
                self.cursor = (self.cursor + 1) % n;
                for _ in 0..QUANTUM {
                    if taken == budget {
                        return taken;
                    }
                    match self.queues[app].try_recv() {
                        Ok(ev) => {
                            f(app, ev);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(c: &str) -> ChannelEvent {
        ChannelEvent::Occupied { channel: c.into() }
    }

    #[test]
    fn a_full_queue_drops_only_for_its_app_and_drain_alternates() {
        let (tx, mut rx) = per_app(2, 100);
        for i in 0..100 {
            assert!(tx.try_send(0, ev(&format!("flood-{i}"))));
        }
        assert!(!tx.try_send(0, ev("over")), "app 0's queue is full");
        assert!(tx.try_send(1, ev("b-1")), "app 1 still has room");
        assert!(tx.try_send(1, ev("b-2")));
        assert!(!tx.try_send(2, ev("no such app")));
        let mut seen = Vec::new();
        assert_eq!(rx.drain(40, |app, _| seen.push(app)), 40);
        let first_b = seen.iter().position(|&a| a == 1).expect("app 1 served within the first pass");
        assert!(first_b <= QUANTUM, "{seen:?}");
        assert_eq!(seen.iter().filter(|&&a| a == 1).count(), 2);
        assert_eq!(rx.drain(1000, |_, _| {}), 62);
        assert_eq!(rx.drain(1000, |_, _| {}), 0);
    }
}
