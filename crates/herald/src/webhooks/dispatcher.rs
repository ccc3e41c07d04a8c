//! The dispatcher task: turns the queue of channel events into durable deliveries.
//!
//! Single task, owning all of its state (no locks). It takes events from the per-app queues
//! round-robin (`queues.rs`), and for each event it
//! 1. drops a `cache_miss` seen for the same channel less than 5 s ago (`dedup.rs`);
//! 2. holds removals back / cancels reload pairs ([`Debouncer`]);
//! 3. routes it to every target of the app that subscribed to its type and whose channel
//!    filter matches;
//! 4. with `batch_webhooks`, collects it into the target's batch ([`Batcher`]); without, makes
//!    it a delivery of its own;
//! 5. writes the deliveries made by one pass (up to 1024 queued events) to the outbox in one
//!    durable transaction, then wakes the targets' workers. An app already holding
//!    `webhook_max_pending` deliveries gets none written (refused, counted per app).
//!
//! On stop it drains the queue, releases every held removal and open batch at once, writes
//! them, and ends.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use herald_core::events::ChannelEvent;
use tokio_util::sync::CancellationToken;

use super::batch::Batcher;
use super::debounce::Debouncer;
use super::dedup::CacheMissDedup;
use super::payload::{now_ms, Body, EventObject};
use super::per_app::{Kind, PerApp};
use super::queues::Inbox;
use super::store::{DeliveryStore, Record};
use super::worker::Target;
use super::WebhookMetrics;

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
    /// Per app index: limits and counters.
    pub per_app: Arc<Vec<PerApp>>,
    /// Per app index: the cache_miss de-duplication table.
    pub cache_seen: Vec<CacheMissDedup>,
}

impl Dispatcher {
    pub(super) async fn run(mut self, mut inbox: Inbox, stop: CancellationToken) {
        let mut out: Vec<(usize, Vec<EventObject>)> = Vec::new();
        loop {
            let deadline = [self.debounce.next_deadline(), self.batcher.next_deadline()].into_iter().flatten().min();
            let mut stopping = stop.is_cancelled();
            if !stopping && inbox.drain(PASS, |app, ev| self.handle(app, ev, &mut out)) == 0 {
                let ready = inbox.ready.clone();
                tokio::select! {
                    biased;
                    () = stop.cancelled() => stopping = true,
                    () = ready.notified() => continue,
                    () = sleep_until(deadline) => {}
                }
            }
            if stopping {
                while inbox.drain(PASS, |app, ev| self.handle(app, ev, &mut out)) > 0 {}
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
            let entries: usize = self.cache_seen.iter().map(CacheMissDedup::len).sum();
            self.metrics.cache_miss_dedup_entries.set(entries as f64);
            self.commit(std::mem::take(&mut out)).await;
        }
    }

    fn handle(&mut self, app: usize, event: ChannelEvent, out: &mut Vec<(usize, Vec<EventObject>)>) {
        let now = Instant::now();
        if let ChannelEvent::CacheMiss { channel } = &event {
            if self.cache_seen.get_mut(app).is_some_and(|d| !d.admit(channel, now)) {
                return;
            }
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
        // Room left per app index under its `webhook_max_pending` (this task is the only one
        // adding deliveries apart from a dead-letter resend, so the count cannot be overtaken).
        let mut room: HashMap<usize, u64> = HashMap::new();
        let mut refused: HashMap<usize, u64> = HashMap::new();
        let mut items: Vec<(String, Record)> = Vec::with_capacity(deliveries.len());
        for (t, events) in deliveries {
            let target = &self.targets[t];
            let app = &self.per_app[target.app_index];
            let left = room
                .entry(target.app_index)
                .or_insert_with(|| app.max_pending.saturating_sub(self.store.counts(&app.app_id).pending));
            if *left == 0 {
                *refused.entry(target.app_index).or_default() += 1;
                continue;
            }
            *left -= 1;
            if !touched.contains(&t) {
                touched.push(t);
            }
            let body = Body { time_ms: created, events }.to_json();
            items.push((target.key.clone(), Record { app_id: target.app_id.clone(), body, created_ms: created }));
        }
        for (app, n) in refused {
            self.per_app[app].note(Kind::Refused, n);
        }
        if items.is_empty() {
            return;
        }
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
                self.metrics.store_failed.increment(n);
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
