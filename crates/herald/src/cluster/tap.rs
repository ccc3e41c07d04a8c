//! The debug console across the cluster: every node's entries of an app reach the consoles
//! watching it on any node.
//!
//! - A node whose consoles watch an app registers it in the sorted set `P:tapw` (member
//!   `<app>|<node>`, score: Unix ms until which the registration holds, [`HOLD`] ahead),
//!   refreshed every [`TICK`] while it watches and removed when its last console closes, and
//!   SUBSCRIBEs to `P:tap:<app>` (plain pub/sub, also on a Redis Cluster). A node that crashes
//!   stops refreshing: the others stop publishing within [`HOLD`].
//! - Every node reads the unexpired registrations every [`TICK`] (one read; nothing is
//!   written while no console is open anywhere) and tells its tap which apps other nodes watch
//!   (`Tap::set_remote`). The tap then hands their entries to the relay ([`TapRelay`]), which
//!   queues them for the worker to PUBLISH on `P:tap:<app>`.
//! - A watching node's own entries go straight to its consoles; the copies of them it receives
//!   back are skipped by node id ([`received`]), so nothing is shown twice.
//! - The subscriber connection's reconnects re-SUBSCRIBE these channels like any other
//!   (`inbound::resubscribe`).
//! - The relay shares the worker's queue with the cluster's real work (publishes, counts,
//!   presence), so it never takes more than its share: at most [`RELAY_PER_SECOND`] entries a
//!   second per node, and none while the queue is more than half full. Entries beyond that are
//!   left out of the other nodes' consoles (counted in
//!   `herald_cluster_console_entries_skipped_total`); delivery never waits for a console.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fred::prelude::*;

use super::errors::Step;
use super::wire::TapMsg;
use super::{Inner, Op};
use crate::console::tap::{Entry, Relay, Tap};

/// How often a node refreshes its registrations and reads the others'.
pub(crate) const TICK: Duration = Duration::from_secs(1);
/// How long a registration holds without a refresh.
pub(crate) const HOLD: Duration = Duration::from_secs(15);

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Entries one node relays to the other nodes' consoles per second at most.
pub(crate) const RELAY_PER_SECOND: u64 = 2_000;

/// Queues the entries of apps watched elsewhere for the worker to publish, within
/// [`RELAY_PER_SECOND`] and half the worker's queue.
pub(crate) struct TapRelay {
    inner: Weak<Inner>,
    /// The current second (Unix, upper 32 bits) and the entries relayed in it (lower 32):
    /// one compare-and-swap per entry on the recording path, no lock.
    window: AtomicU64,
}

impl TapRelay {
    pub(crate) fn new(inner: Weak<Inner>) -> TapRelay {
        TapRelay { inner, window: AtomicU64::new(0) }
    }

    /// Takes one of this second's relay slots, if any is left.
    fn admit(&self, now_s: u64) -> bool {
        let second = now_s & 0xffff_ffff;
        let mut current = self.window.load(Ordering::Relaxed);
        loop {
            let (s, n) = (current >> 32, current & 0xffff_ffff);
            let next = match s == second {
                true if n >= RELAY_PER_SECOND => return false,
                true => current + 1,
                false => (second << 32) | 1,
            };
            match self.window.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }
}

impl Relay for TapRelay {
    fn forward(&self, app_id: &str, entry: Arc<Entry>) {
        let Some(inner) = self.inner.upgrade() else { return };
        let roomy = inner.ops.capacity() * 2 >= inner.ops.max_capacity();
        if roomy && self.admit((now_ms() / 1000) as u64) {
            inner.enqueue(Op::Tap { app: Arc::from(app_id), entry });
        } else if let Some(m) = inner.metrics() {
            m.console_skipped.increment(1);
        }
    }
}

/// The body of an entry published for the other nodes.
pub(crate) fn encode(node: u32, entry: &Entry) -> Bytes {
    Bytes::from(serde_json::to_vec(&TapMsg { n: node, e: entry.clone() }).unwrap_or_default())
}

/// An entry received on `P:tap:<app>`: to this node's consoles, unless this node recorded it.
pub(crate) fn received(inner: &Inner, me: u32, app: &str, raw: &[u8]) {
    let Some(tap) = inner.tap.get() else { return };
    match serde_json::from_slice::<TapMsg>(raw) {
        Ok(msg) if msg.n != me => tap.deliver(app, msg.e),
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "undecodable console entry ignored"),
    }
}

/// Registers this node's watched apps, listens to their entries, reads the apps watched
/// elsewhere; every [`TICK`] and whenever a console opens or closes here.
pub(crate) async fn run(inner: Arc<Inner>, tap: Arc<Tap>) {
    // Apps registered and subscribed to by this node.
    let mut listening: HashSet<Arc<str>> = HashSet::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = tap.changed() => {}
        }
        let me = inner.node();
        let local: HashSet<Arc<str>> = tap.local_apps().into_iter().collect();
        for app in local.difference(&listening).cloned().collect::<Vec<_>>() {
            match inner.subscriber.subscribe(inner.names.tap(&app)).await {
                Ok(()) => {
                    listening.insert(app);
                }
                Err(e) => inner.redis_error(Step::Console, &e, "entries of other nodes missed; retried within 1 s"),
            }
        }
        for app in listening.difference(&local).cloned().collect::<Vec<_>>() {
            let gone = inner.client.zrem::<i64, _, _>(inner.names.tap_watchers(), member(&app, me)).await;
            let unsubscribed = inner.subscriber.unsubscribe(inner.names.tap(&app)).await;
            match gone.map(drop).and(unsubscribed) {
                Ok(()) => {
                    listening.remove(&app);
                }
                Err(e) => inner.redis_error(Step::Console, &e, "retried within 1 s (the registration expires anyway)"),
            }
        }
        if !listening.is_empty() {
            if let Err(e) = register(&inner, &listening, me).await {
                inner.redis_error(Step::Console, &e, "retried within 1 s");
            }
        }
        match watched_elsewhere(&inner, me).await {
            Ok(remote) => tap.set_remote(remote),
            // Kept as it was: while Redis fails, nothing published reaches anyone anyway.
            Err(e) => inner.redis_error(Step::Console, &e, "read again within 1 s"),
        }
    }
}

/// `<app>|<node>`: the member of a registration.
fn member(app: &str, node: u32) -> String {
    format!("{app}|{node}")
}

/// Refreshes this node's registrations and drops everyone's expired ones.
async fn register(inner: &Inner, apps: &HashSet<Arc<str>>, me: u32) -> Result<(), fred::error::Error> {
    let now = now_ms();
    let until = (now + HOLD.as_millis() as i64) as f64;
    let key = inner.names.tap_watchers();
    let members: Vec<(f64, String)> = apps.iter().map(|app| (until, member(app, me))).collect();
    let p = inner.client.pipeline();
    let _: () = p.zadd(&key, None, None, false, false, members).await?;
    let _: () = p.zremrangebyscore(&key, "-inf", now as f64).await?;
    let _: Vec<Value> = p.all().await?;
    Ok(())
}

/// The apps some other node's console watches (unexpired registrations).
async fn watched_elsewhere(inner: &Inner, me: u32) -> Result<HashSet<Arc<str>>, fred::error::Error> {
    let members: Vec<String> =
        inner.client.zrangebyscore(inner.names.tap_watchers(), now_ms() as f64, "+inf", false, None).await?;
    Ok(members
        .iter()
        .filter_map(|m| m.rsplit_once('|'))
        .filter(|(_, node)| node.parse::<u32>().is_ok_and(|n| n != me))
        .map(|(app, _)| Arc::from(app))
        .collect())
}

/// Graceful leave: removes this node's registrations, so the others stop publishing now.
pub(crate) async fn leave(inner: &Inner) {
    let Some(tap) = inner.tap.get() else { return };
    let me = inner.node();
    let members: Vec<String> = tap.local_apps().iter().map(|app| member(app, me)).collect();
    if members.is_empty() {
        return;
    }
    if let Err(e) = inner.client.zrem::<i64, _, _>(inner.names.tap_watchers(), members).await {
        inner.redis_error(Step::Console, &e, "the other nodes stop publishing when the registration expires");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_admits_its_share_per_second_and_starts_again_the_next() {
        let relay = TapRelay::new(Weak::new());
        let admitted = (0..RELAY_PER_SECOND + 500).filter(|_| relay.admit(100)).count() as u64;
        assert_eq!(admitted, RELAY_PER_SECOND);
        assert!(relay.admit(101), "a new second has its own slots");
    }
}
