//! The dispatcher task: turns the queue of channel events into durable deliveries.
//!
//! Single task, owning all of its state (no locks): for each event it
//! 1. drops a `cache_miss` seen for the same channel less than 5 s ago;
//! 2. holds removals back / cancels reload pairs ([`Debouncer`]);
//! 3. routes it to every target of the app that subscribed to its type and whose channel
//!    filter matches;
//! 4. with `batch_webhooks`, collects it into the target's batch ([`Batcher`]); without, makes
//!    it a delivery of its own;
//! 5. writes the deliveries made by one pass (up to 1024 queued events) to the outbox in one
//!    durable transaction, then wakes the targets' workers.
//!
//! On stop it drains the queue, releases every held removal and open batch at once, writes
//! them, and ends.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_core::events::ChannelEvent;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::batch::Batcher;
use super::debounce::Debouncer;
use super::payload::{now_ms, Body, EventObject};
use super::store::{DeliveryStore, Record};
use super::worker::Target;
use super::{Queued, WebhookMetrics};

/// `cache_miss` de-duplication window (PROTOCOL.md 9.1).
const CACHE_MISS_WINDOW: Duration = Duration::from_secs(5);
/// Events handled per pass (and per outbox transaction) at most.
const PASS: usize = 1024;

pub(crate) struct Dispatcher {
    /// Per app index: its batching flag and the indices of its targets.
    pub apps: Vec<(bool, Vec<usize>)>,
    pub targets: Arc<Vec<Arc<Target>>>,
    pub debounce: Debouncer,
    pub batcher: Batcher,
    pub store: Arc<DeliveryStore>,
    pub metrics: WebhookMetrics,
    /// Last cache_miss sent per (app, channel).
    pub cache_seen: HashMap<(usize, Arc<str>), Instant>,
}

impl Dispatcher {
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Queued>, stop: CancellationToken) {
        let mut out: Vec<(usize, Vec<EventObject>)> = Vec::new();
        loop {
            let deadline = [self.debounce.next_deadline(), self.batcher.next_deadline()].into_iter().flatten().min();
            let mut stopping = false;
            tokio::select! {
                biased;
                () = stop.cancelled() => stopping = true,
                first = rx.recv() => match first {
                    Some(q) => {
                        self.handle(q, &mut out);
                        for _ in 1..PASS {
                            match rx.try_recv() {
                                Ok(q) => self.handle(q, &mut out),
                                Err(_) => break,
                            }
                        }
                    }
                    None => stopping = true,
                },
                () = sleep_until(deadline) => {}
            }
            if stopping {
                while let Ok(q) = rx.try_recv() {
                    self.handle(q, &mut out);
                }
                for (app, ev) in self.debounce.drain() {
                    self.route(app, &ev, Instant::now(), &mut out);
                }
                out.extend(self.batcher.drain());
                self.commit(std::mem::take(&mut out)).await;
                return;
            }
            let now = Instant::now();
            for (app, ev) in self.debounce.due(now) {
                self.route(app, &ev, now, &mut out);
            }
            out.extend(self.batcher.due(now));
            self.commit(std::mem::take(&mut out)).await;
        }
    }

    fn handle(&mut self, (app, event): Queued, out: &mut Vec<(usize, Vec<EventObject>)>) {
        let now = Instant::now();
        if let ChannelEvent::CacheMiss { channel } = &event {
            let key = (app, channel.clone());
            if self.cache_seen.get(&key).is_some_and(|t| now.duration_since(*t) < CACHE_MISS_WINDOW) {
                return;
            }
            if self.cache_seen.len() >= 10_000 {
                self.cache_seen.retain(|_, t| now.duration_since(*t) < CACHE_MISS_WINDOW);
            }
            self.cache_seen.insert(key, now);
        }
        if let Some(ev) = self.debounce.on_event(app, event, now) {
            self.route(app, &ev, now, out);
        }
    }

    fn route(&mut self, app: usize, ev: &ChannelEvent, now: Instant, out: &mut Vec<(usize, Vec<EventObject>)>) {
        let Some((batch, targets)) = self.apps.get(app) else { return };
        let mut object: Option<EventObject> = None;
        for &t in targets {
            if !self.targets[t].spec.accepts(ev.kind(), ev.channel()) {
                continue;
            }
            let obj = object.get_or_insert_with(|| EventObject::from(ev)).clone();
            if *batch {
                if let Some(full) = self.batcher.push(t, obj, now) {
                    out.push((t, full));
                }
            } else {
                out.push((t, vec![obj]));
            }
        }
    }

    /// Writes deliveries durably, then wakes their workers. A store failure loses them
    /// (logged and counted as dropped): nothing else could be done with them.
    async fn commit(&self, deliveries: Vec<(usize, Vec<EventObject>)>) {
        if deliveries.is_empty() {
            return;
        }
        let created = now_ms();
        let mut touched: Vec<usize> = Vec::new();
        let items: Vec<(String, Record)> = deliveries
            .into_iter()
            .map(|(t, events)| {
                if !touched.contains(&t) {
                    touched.push(t);
                }
                let target = &self.targets[t];
                let body = Body { time_ms: created, events }.to_json();
                (target.key.clone(), Record { app_id: target.app_id.clone(), body, created_ms: created })
            })
            .collect();
        let n = items.len() as u64;
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.enqueue(&items)).await {
            Ok(Ok(())) => {
                self.metrics.queued.increment(n);
                for t in touched {
                    self.targets[t].notify.notify_one();
                }
            }
            Ok(Err(e)) => {
                self.metrics.dropped.increment(n);
                tracing::error!(error = %e, deliveries = n, "cannot write webhook deliveries to the outbox; dropped");
            }
            Err(e) => tracing::error!(error = %e, "webhook outbox task failed"),
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
