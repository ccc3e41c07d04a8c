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
//! Routing uses the configuration current when the event is taken from the queue: each pass
//! loads the routing table once (`routes.rs`, replaced by `Webhooks::set_apps`), so a change
//! applies from the next pass on. An event of an app that has no targets any more is dropped
//! there; a removal held back, released later, is routed with the table of its release. A
//! delivery already routed (an open batch) keeps its target.
//!
//! On stop it drains the queue, releases every held removal and open batch at once, writes
//! them, and ends.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
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
use super::routes::{AppRoute, Table, Target};
use super::store::Record;
use super::Shared;

/// Events handled per pass (and per outbox transaction) at most.
const PASS: usize = 1024;

/// A target an event was routed to, with the app route it was routed by (its limits and
/// counters apply when the delivery is written). Compares by target key, so a batch opened
/// under one configuration generation takes the events of the next for the same target.
#[derive(Debug, Clone)]
pub(crate) struct Routed {
    pub app: Arc<AppRoute>,
    pub target: Arc<Target>,
}

impl PartialEq for Routed {
    fn eq(&self, other: &Self) -> bool {
        self.target.key == other.target.key
    }
}

impl Eq for Routed {}

impl Hash for Routed {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.target.key.hash(state);
    }
}

type Deliveries = Vec<(Routed, Vec<EventObject>)>;

pub(crate) struct Dispatcher {
    /// Held removals, by app id.
    pub debounce: Debouncer<Arc<str>>,
    pub batcher: Batcher<Routed>,
    pub shared: Arc<Shared>,
}

impl Dispatcher {
    pub(super) async fn run(mut self, mut inbox: Inbox, stop: CancellationToken) {
        let mut out: Deliveries = Vec::new();
        loop {
            let deadline = [self.debounce.next_deadline(), self.batcher.next_deadline()].into_iter().flatten().min();
            let mut stopping = stop.is_cancelled();
            let table = self.shared.routes.load_full();
            if !stopping && inbox.drain(PASS, |app, dedup, ev| self.handle(&table, app, dedup, ev, &mut out)) == 0 {
                let ready = inbox.ready.clone();
                tokio::select! {
                    biased;
                    () = stop.cancelled() => stopping = true,
                    () = ready.notified() => continue,
                    () = sleep_until(deadline) => {}
                }
            }
            if stopping {
                let table = self.shared.routes.load_full();
                while inbox.drain(PASS, |app, dedup, ev| self.handle(&table, app, dedup, ev, &mut out)) > 0 {}
                for (app, ev) in self.debounce.drain() {
                    self.route(&table, &app, &ev, Instant::now(), &mut out);
                }
                out.extend(self.batcher.drain());
                self.commit(std::mem::take(&mut out)).await;
                return;
            }
            let now = Instant::now();
            for (app, ev) in self.debounce.due(now) {
                self.route(&table, &app, &ev, now, &mut out);
            }
            out.extend(self.batcher.due(now));
            self.shared.metrics.cache_miss_dedup_entries.set(inbox.dedup_entries() as f64);
            self.commit(std::mem::take(&mut out)).await;
        }
    }

    fn handle(
        &mut self,
        table: &Table,
        app: &Arc<str>,
        dedup: &mut CacheMissDedup,
        event: ChannelEvent,
        out: &mut Deliveries,
    ) {
        let now = Instant::now();
        if let ChannelEvent::CacheMiss { channel } = &event {
            if !dedup.admit(channel, now) {
                return;
            }
        }
        if let Some(ev) = self.debounce.on_event(app, event, now) {
            self.route(table, app, &ev, now, out);
        }
    }

    fn route(&mut self, table: &Table, app: &str, ev: &ChannelEvent, now: Instant, out: &mut Deliveries) {
        let Some(route) = table.get(app) else { return };
        let mut object: Option<EventObject> = None;
        for target in &route.targets {
            if !target.spec.accepts(ev.kind(), ev.channel()) {
                continue;
            }
            let obj = object.get_or_insert_with(|| EventObject::from(ev)).clone();
            let routed = Routed { app: route.clone(), target: target.clone() };
            if route.batch {
                out.extend(self.batcher.push(routed, obj, now));
            } else {
                // A batch opened before the app stopped batching goes first: a target's
                // deliveries stay in the order their events happened.
                out.extend(self.batcher.take(&routed));
                out.push((routed, vec![obj]));
            }
        }
    }

    /// Writes deliveries durably, then wakes their workers. A store failure (or no outbox:
    /// it could not be opened, which was logged then) loses them, counted in
    /// `herald_webhook_deliveries_lost_total`: nothing else could be done with them.
    async fn commit(&self, deliveries: Deliveries) {
        if deliveries.is_empty() {
            return;
        }
        let Some(store) = self.shared.store.get().cloned() else {
            self.shared.metrics.store_failed.increment(deliveries.len() as u64);
            return;
        };
        let created = now_ms();
        let mut touched: Vec<Arc<Target>> = Vec::new();
        // Room left per app under its `webhook_max_pending` (this task is the only one adding
        // deliveries apart from a dead-letter resend, so the count cannot be overtaken).
        let mut room: HashMap<Arc<str>, u64> = HashMap::new();
        let mut refused: HashMap<Arc<str>, (Arc<PerApp>, u64)> = HashMap::new();
        let mut items: Vec<(String, Record)> = Vec::with_capacity(deliveries.len());
        for (Routed { app, target }, events) in deliveries {
            let id = &app.state.app_id;
            let left = room
                .entry(id.clone())
                .or_insert_with(|| app.limits.max_pending.saturating_sub(store.counts(id).pending));
            if *left == 0 {
                refused.entry(id.clone()).or_insert_with(|| (app.state.per_app.clone(), 0)).1 += 1;
                continue;
            }
            *left -= 1;
            let body = Body { time_ms: created, events }.to_json();
            items.push((target.key.clone(), Record { app_id: id.to_string(), body, created_ms: created }));
            if !touched.iter().any(|t| t.key == target.key) {
                touched.push(target);
            }
        }
        for (per_app, n) in refused.into_values() {
            per_app.note(Kind::Refused, n);
        }
        if items.is_empty() {
            return;
        }
        let n = items.len() as u64;
        match tokio::task::spawn_blocking(move || store.enqueue(&items)).await {
            Ok(Ok(())) => {
                self.shared.metrics.queued.increment(n);
                for t in touched {
                    t.notify.notify_one();
                }
            }
            Ok(Err(e)) => {
                self.shared.metrics.store_failed.increment(n);
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
