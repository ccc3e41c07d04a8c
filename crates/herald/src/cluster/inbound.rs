//! Listening to the cluster: interest-based SUBSCRIBE/UNSUBSCRIBE per channel, the snapshot
//! loaded when a node starts listening to a channel, and applying inbound messages.
//!
//! Consistency: writers change Redis state, then PUBLISH. A node starting to listen SUBSCRIBEs
//! first, then reads the snapshot, buffering messages meanwhile, then applies the snapshot and
//! the buffered messages in order. Updates are idempotent, so whatever the snapshot already
//! contained is not counted twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fred::error::Error;
use fred::prelude::*;
use herald_core::hub::Hub;
use herald_core::remote::RemoteUpdate;
use herald_protocol::codes::CloseCode;
use tokio::sync::oneshot;

use super::errors::Step;
use super::wire::{cache_from_value, decode, ChannelMsg, ControlMsg};
use super::{ChannelKey, Inner, Interest};

/// How often interest is reconciled with local subscriptions.
const RECONCILE: Duration = Duration::from_secs(2);

/// Starts listening to `channel` if needed. `None`: already listening.
pub(crate) fn prepare(inner: &Arc<Inner>, app: &str, channel: &str) -> Option<oneshot::Receiver<()>> {
    let key: (Arc<str>, Arc<str>) = (Arc::from(app), Arc::from(channel));
    let mut map = inner.interest.lock();
    let (tx, rx) = oneshot::channel();
    match map.get_mut(&key) {
        Some(Interest::Active { .. }) => return None,
        Some(Interest::Pending { waiters, .. } | Interest::Dropping { waiters }) => {
            waiters.push(tx);
            return Some(rx);
        }
        None => {
            map.insert(key.clone(), Interest::Pending { buffered: Vec::new(), bytes: 0, waiters: vec![tx] });
        }
    }
    drop(map);
    inner.spawn(listen(inner.clone(), key, false));
    Some(rx)
}

/// SUBSCRIBE, load the snapshot, apply it and what arrived meanwhile, release the waiters.
/// `replace`: the snapshot replaces the replica this node still holds (listening again to a
/// channel it was dropping) instead of adding to it.
async fn listen(inner: Arc<Inner>, key: (Arc<str>, Arc<str>), replace: bool) {
    let (app, channel) = (&key.0, &key.1);
    let name = inner.names.channel(app, channel);
    let subscribed =
        if inner.sharded { inner.subscriber.ssubscribe(name).await } else { inner.subscriber.subscribe(name).await };
    let snapshot = match &subscribed {
        Ok(()) => match load_snapshot(&inner, app, channel, replace).await {
            Ok(update) => Some(update),
            Err(e) => {
                // Subscribed, so messages from now on arrive; what happened before is missing
                // until the next reconcile reloads the snapshot (`resync`).
                inner.redis_error(Step::Snapshot, &e, "joining with what arrives from now on; reloaded within 2 s");
                None
            }
        },
        Err(e) => {
            // Nothing from the cluster reaches this channel: join with local state only; the
            // next reconcile listens again.
            inner.redis_error(Step::Subscribe, e, "joining with local state only; retried within 2 s");
            None
        }
    };
    let Some(hub) = inner.hub() else { return };
    let ns = hub.namespace(app);
    let policy = count_policy(&hub, app);
    let resync = snapshot.is_none();
    if let Some(update) = snapshot {
        ns.apply_remote(channel, update, policy, &hub.metrics);
    }
    let pending = {
        let mut map = inner.interest.lock();
        if subscribed.is_ok() {
            map.insert(key.clone(), Interest::Active { resync })
        } else {
            map.remove(&key)
        }
    };
    if let Some(Interest::Pending { buffered, waiters, .. }) = pending {
        for raw in buffered {
            apply(&inner, &hub, app, channel, &raw);
        }
        for w in waiters {
            let _ = w.send(());
        }
    }
}

/// After a Redis outage: reload the cluster state of every channel this node listens to and
/// replace what it held (members that left during the outage disappear, new ones appear).
pub(crate) async fn resync_all(inner: &Arc<Inner>) {
    let keys: Vec<ChannelKey> = inner
        .interest
        .lock()
        .iter()
        .filter(|(_, state)| matches!(state, Interest::Active { .. }))
        .map(|(k, _)| k.clone())
        .collect();
    reload(inner, keys).await;
}

/// Reloads the snapshot of each channel and replaces what this node held of it. A channel
/// whose snapshot cannot be loaded is marked `resync`, so the next reconcile tries again
/// (its replica must not pass for complete).
async fn reload(inner: &Arc<Inner>, keys: Vec<ChannelKey>) {
    let Some(hub) = inner.hub() else { return };
    for key in keys {
        let (app, channel) = (&key.0, &key.1);
        let loaded = match load_snapshot(inner, app, channel, true).await {
            Ok(update) => {
                hub.namespace(app).apply_remote(channel, update, count_policy(&hub, app), &hub.metrics);
                true
            }
            Err(e) => {
                inner.redis_error(Step::Snapshot, &e, "keeping the replica as it is; reloaded within 2 s");
                false
            }
        };
        if let Some(Interest::Active { resync }) = inner.interest.lock().get_mut(&key) {
            *resync = !loaded;
        }
    }
}

/// One pipeline reading a channel's shared state; `replace`: the snapshot replaces what this
/// node holds of the channel instead of adding to it.
async fn load_snapshot(inner: &Inner, app: &str, channel: &str, replace: bool) -> Result<RemoteUpdate, Error> {
    let n = &inner.names;
    let me = inner.node();
    let p = inner.client.pipeline();
    let _: () = p.hgetall(n.presence(app, channel)).await?;
    let _: () = p.hgetall(n.counts(app, channel)).await?;
    let _: () = p.get(n.cache(app, channel)).await?;
    let _: () = p.pttl(n.cache(app, channel)).await?;
    let (pres, counts, cache, pttl): (HashMap<String, String>, HashMap<String, u64>, Option<String>, i64) =
        p.all().await?;
    let members = pres
        .into_iter()
        .filter(|(_, info)| !info.starts_with('\0'))
        .filter_map(|(field, info)| {
            let (node, user) = field.split_once('|')?;
            let node: u32 = node.parse().ok()?;
            (node != me).then(|| (node, Arc::from(user), (!info.is_empty()).then(|| Arc::from(info.as_str()))))
        })
        .collect();
    let counts = counts
        .into_iter()
        .filter_map(|(node, c)| node.parse::<u32>().ok().filter(|n| *n != me).map(|n| (n, c)))
        .collect();
    let cache = cache.and_then(|v| cache_from_value(&v, pttl));
    Ok(RemoteUpdate::Snapshot { members, counts, cache, replace })
}

/// After each reconnect of the subscriber connection, SUBSCRIBEs again to every channel it
/// listened to (Redis forgets a connection's subscriptions with the connection).
pub(crate) async fn resubscribe(
    inner: Arc<Inner>,
    mut reconnected: tokio::sync::broadcast::Receiver<fred::types::config::Server>,
) {
    loop {
        // Lagged: several reconnects in a row; one resubscribe covers them.
        if let Err(tokio::sync::broadcast::error::RecvError::Closed) = reconnected.recv().await {
            return;
        }
        // Until it works: a failure on a live connection (a timeout) would otherwise leave
        // every channel unsubscribed until the next reconnect.
        while let Err(e) = inner.subscriber.resubscribe_all().await {
            inner.redis_error(
                Step::Resubscribe,
                &e,
                "cross-node messages are missed until it succeeds; retrying in 1 s",
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// SUBSCRIBEs to the control channel; false (counted, logged) if Redis refused.
async fn subscribe_control(inner: &Inner) -> bool {
    match inner.subscriber.subscribe(inner.names.control()).await {
        Ok(()) => true,
        Err(e) => {
            // fred tracks a channel for resubscription only once a SUBSCRIBE succeeded, so
            // the reconcile tick retries until one does.
            inner.redis_error(
                Step::Subscribe,
                &e,
                "node-gone, user-status and terminate messages are missed; retried within 2 s",
            );
            false
        }
    }
}

/// One warning per 10 s about a lagging subscription, however many bursts.
static LAGGED_LOG: std::sync::LazyLock<crate::log_limit::LogLimit> =
    std::sync::LazyLock::new(|| crate::log_limit::LogLimit::new(Duration::from_secs(10)));

/// Receives every pub/sub message; reconciles interest periodically.
pub(crate) async fn run(inner: Arc<Inner>) {
    let mut rx = inner.subscriber.message_rx();
    let mut control_subscribed = subscribe_control(&inner).await;
    let mut tick = tokio::time::interval(RECONCILE);
    let control = inner.names.control();
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Ok(msg) => {
                    let Some(hub) = inner.hub() else { return };
                    let Some(raw) = msg.value.as_bytes().map(Bytes::copy_from_slice) else { continue };
                    if let Some(m) = inner.metrics() { m.received.increment(1); }
                    if &*msg.channel == control.as_str() {
                        control_message(&inner, &hub, &raw);
                    } else if let Some(app) = inner.names.parse_tap(&msg.channel) {
                        super::tap::received(&inner, hub.node(), app, &raw);
                    } else if let Some((app, channel)) = inner.names.parse_channel(&msg.channel) {
                        route(&inner, &hub, app, channel, raw);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    // The buffer (`SUBSCRIPTION_BUFFER`) overflowed: the missed events are gone,
                    // but presence and counts are reloaded from the shared state.
                    if let Some(m) = inner.metrics() { m.lagged.increment(n); }
                    if let Some(more) = LAGGED_LOG.admit() {
                        tracing::warn!(missed = n, earlier_lines_held_back = more, "cluster messages dropped: this node fell behind its Redis subscription; reloading channel state");
                    }
                    let resync = inner.clone();
                    inner.spawn(async move { resync_all(&resync).await });
                }
                Err(_) => return,
            },
            _ = tick.tick() => {
                let Some(hub) = inner.hub() else { return };
                if !control_subscribed {
                    control_subscribed = subscribe_control(&inner).await;
                }
                reconcile(&inner, &hub).await;
            }
        }
    }
}

/// Messages of one channel held while its snapshot loads (which times out after 3 s): enough
/// for thousands of events per second on one channel, and a bound on what a flood of
/// publishes can make a joining node hold. Beyond it messages are dropped and counted in
/// `herald_cluster_buffer_overflow_total`.
pub(crate) const MAX_BUFFERED: usize = 10_000;
/// The same buffer's bound in bytes (frames can be up to `max_event_payload_in_kb`).
pub(crate) const MAX_BUFFERED_BYTES: usize = 16 * 1024 * 1024;

/// Buffers the message while the channel's snapshot loads, applies it otherwise.
fn route(inner: &Arc<Inner>, hub: &Arc<Hub>, app: &str, channel: &str, raw: Bytes) {
    {
        let mut map = inner.interest.lock();
        match map.get_mut(&(Arc::from(app), Arc::from(channel))) {
            Some(Interest::Pending { buffered, bytes, .. }) => {
                if buffered.len() < MAX_BUFFERED && *bytes + raw.len() <= MAX_BUFFERED_BYTES {
                    *bytes += raw.len();
                    buffered.push(raw);
                } else if let Some(m) = inner.metrics() {
                    m.buffer_overflow.increment(1);
                }
                return;
            }
            Some(Interest::Active { .. } | Interest::Dropping { .. }) => {}
            None => {
                if let Some(m) = inner.metrics() {
                    m.unneeded.increment(1);
                }
                return;
            }
        }
    }
    apply(inner, hub, app, channel, &raw);
}

fn apply(inner: &Inner, hub: &Arc<Hub>, app: &str, channel: &str, raw: &Bytes) {
    let Some((msg, frame)) = decode(raw) else {
        tracing::debug!(channel, "undecodable cluster message ignored");
        return;
    };
    if msg.node() == hub.node() {
        return; // our own publish: local subscribers already have it
    }
    let update = match msg {
        ChannelMsg::Event { x, c, .. } => RemoteUpdate::Event { frame, exclude: x, cache: c },
        ChannelMsg::Joined { n, u, i } => RemoteUpdate::MemberJoined {
            node: n,
            user_id: Arc::from(u.as_str()),
            user_info: i.map(|i| Arc::from(i.as_str())),
        },
        ChannelMsg::Left { n, u } => RemoteUpdate::MemberLeft { node: n, user_id: Arc::from(u.as_str()) },
        ChannelMsg::Count { n, c } => RemoteUpdate::Count { node: n, count: c },
    };
    let policy = count_policy(hub, app);
    if !hub.namespace(app).apply_remote(channel, update, policy, &hub.metrics) {
        if let Some(m) = inner.metrics() {
            m.unneeded.increment(1);
        }
    }
}

fn control_message(inner: &Inner, hub: &Arc<Hub>, raw: &Bytes) {
    match serde_json::from_slice::<ControlMsg>(raw) {
        Ok(ControlMsg::NodeGone { n }) if n != hub.node() => {
            for (app, ns) in hub.namespaces() {
                ns.node_gone(n, count_policy(hub, &app), &hub.metrics);
            }
        }
        Ok(ControlMsg::UserStatus { a, u, on }) => {
            let watch = hub.apps().by_id(&a).is_some_and(|app| app.limits.enable_watchlist_events);
            hub.namespace(&a).users.cluster_status(&u, on, watch, &hub.metrics);
        }
        Ok(ControlMsg::Terminate { a, u }) => {
            for conn in hub.namespace(&a).connections_of_user(&u) {
                conn.outbox.close(CloseCode::UNAUTHORIZED, "You got disconnected by the app.");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "undecodable control message ignored"),
    }
    let _ = inner;
}

/// Drops interest in channels without local subscribers; re-listens to locally subscribed
/// channels whose SUBSCRIBE failed (Redis outage); reloads snapshots that failed to load.
async fn reconcile(inner: &Arc<Inner>, hub: &Arc<Hub>) {
    let mut drop_list = Vec::new();
    let mut resync = Vec::new();
    {
        // Checked and marked under the interest lock, which `prepare` takes too: a join from
        // now on waits for the outcome instead of using a replica about to be dropped.
        let mut map = inner.interest.lock();
        for (key, state) in map.iter_mut() {
            let Interest::Active { resync: stale } = state else { continue };
            if !hub.namespace(&key.0).has_local_subscribers(&key.1) {
                *state = Interest::Dropping { waiters: Vec::new() };
                drop_list.push(key.clone());
            } else if *stale {
                resync.push(key.clone());
            }
        }
    }
    if !drop_list.is_empty() {
        let names: Vec<String> = drop_list.iter().map(|(a, c)| inner.names.channel(a, c)).collect();
        let unsubscribed = if inner.sharded {
            // Sharded channels of different slots cannot share one SUNSUBSCRIBE.
            let mut result = Ok(());
            for name in names {
                if let Err(e) = inner.subscriber.sunsubscribe(name).await {
                    result = Err(e);
                }
            }
            result
        } else {
            inner.subscriber.unsubscribe(names).await
        };
        match unsubscribed {
            Ok(()) => {
                let mut dropped = Vec::new();
                let mut relisten = Vec::new();
                let mut map = inner.interest.lock();
                for key in drop_list {
                    let Some(Interest::Dropping { waiters }) = map.remove(&key) else { continue };
                    // Someone joined meanwhile (a waiter, or a join that passed `prepare`
                    // just before the channel was marked): listen again, replacing the replica.
                    if waiters.is_empty() && !hub.namespace(&key.0).has_local_subscribers(&key.1) {
                        dropped.push(key);
                    } else {
                        map.insert(key.clone(), Interest::Pending { buffered: Vec::new(), bytes: 0, waiters });
                        relisten.push(key);
                    }
                }
                drop(map);
                for (app, channel) in &dropped {
                    hub.namespace(app).drop_interest(channel);
                }
                for key in relisten {
                    inner.spawn(listen(inner.clone(), key, true));
                }
            }
            // Still listening: the channel is active again (its messages kept being applied),
            // joins that waited go ahead, and the next reconcile unsubscribes again.
            Err(e) => {
                let mut waiting = Vec::new();
                let mut map = inner.interest.lock();
                for key in &drop_list {
                    if let Some(state @ Interest::Dropping { .. }) = map.get_mut(key) {
                        if let Interest::Dropping { waiters } =
                            std::mem::replace(state, Interest::Active { resync: false })
                        {
                            waiting.extend(waiters);
                        }
                    }
                }
                drop(map);
                for w in waiting {
                    let _ = w.send(());
                }
                inner.redis_error(Step::Unsubscribe, &e, "still listening; retried within 2 s");
            }
        }
    }
    if !resync.is_empty() {
        reload(inner, resync).await;
    }
    for (app, ns) in hub.namespaces() {
        for channel in ns.locally_subscribed() {
            let known = inner.interest.lock().contains_key(&(Arc::from(app.as_str()), channel.clone()));
            if !known {
                drop(prepare(inner, &app, &channel));
            }
        }
    }
}

pub(crate) fn count_policy(hub: &Hub, app: &str) -> herald_core::channel::CountPolicy {
    match hub.apps().by_id(app) {
        Some(a) => hub.count_policy(&a),
        None => herald_core::channel::CountPolicy { enabled: false, threshold: 0, interval: Duration::from_secs(5) },
    }
}
