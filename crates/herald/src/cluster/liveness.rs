//! Node liveness: heartbeats, reaping dead nodes, re-registering after an outage, leaving.
//!
//! Every node writes `now` into `P:nodes` every `heartbeat`. Every `heartbeat` each node also
//! looks for nodes older than `node_timeout`; the first to take the reap lock for a dead node
//! removes its state channel by channel (Lua, so verdicts are exact), reports the resulting
//! vacated / member_removed webhooks, and publishes `NodeGone` so every node drops the dead
//! node's members from its replicas (member_removed to local subscribers). Upper bound from
//! crash to cleanup: `node_timeout + heartbeat`. The reaper sends the `node_lost` alert once
//! the state is gone (an error leaves the node to be reaped, and reported, later).
//!
//! A heartbeat that fails after one that succeeded (or the first one) sends `redis_down`; the
//! next that succeeds sends `redis_restored` (this node's own view of Redis).
//!
//! If this node's own heartbeat entry was missing (first start, or it was reaped during an
//! outage), it re-registers everything it holds locally.
//!
//! A Redis error never passes for an empty answer here: a registration that could not read
//! what Redis holds is retried at the next heartbeat, and a reap that could not read or remove
//! all of a dead node's state leaves the node registered, to be reaped again.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fred::error::Error;
use fred::prelude::*;
use herald_core::adapter::LocalChange;
use herald_core::events::{self, ChannelEvent, EventKind};
use herald_protocol::channel::ChannelKind;

use super::errors::Step;
use super::scripts;
use super::wire::{ControlMsg, ONLINE};
use super::{Inner, Op};
use crate::alerts::{Alert, AlertKind};

/// How long a reaper holds a dead node's reap lock.
const REAP_LOCK_MS: i64 = 30_000;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub(crate) async fn run(inner: Arc<Inner>) {
    let heartbeat = inner.config.heartbeat;
    let node_timeout = inner.config.node_timeout;
    let mut tick = tokio::time::interval(heartbeat);
    let mut was_connected = false;
    // This node's state was written again since the last (re)connect.
    let mut registered = false;
    let mut connected_since = tokio::time::Instant::now();
    let mut resync_at: Vec<tokio::time::Instant> = Vec::new();
    // Whether the last heartbeat reached Redis (`None` before the first): its changes are the
    // `redis_down` / `redis_restored` alerts.
    let mut redis_up: Option<bool> = None;
    loop {
        tick.tick().await;
        let Some(hub) = inner.hub() else { return };
        let node = hub.node();
        // ZADD returns 1 when the member is new: we were not registered (first start, or
        // reaped while Redis was unreachable).
        let added: Result<i64, _> =
            inner.client.zadd(inner.names.nodes(), None, None, false, false, (now_ms() as f64, node.to_string())).await;
        let now = tokio::time::Instant::now();
        match added {
            Ok(n) if n == 1 || !was_connected => {
                // (Re)connected: make Redis hold exactly our local state again, then — once the
                // other nodes had a heartbeat to do the same — reload theirs.
                connected_since = now;
                registered = false;
                resync_at = vec![now + heartbeat * 2, now + node_timeout];
            }
            Ok(_) => {}
            Err(e) => {
                // Treated as an outage: once a heartbeat succeeds again, this node
                // re-registers its state.
                inner.redis_error(Step::Heartbeat, &e, "this node re-registers its state once Redis answers");
                if redis_up != Some(false) {
                    let message = format!("node {node} cannot reach Redis ({e}); it serves its local connections only");
                    inner.alert(Alert::new(AlertKind::RedisDown, message).detail("error", e.to_string()));
                }
                redis_up = Some(false);
                was_connected = false;
                continue;
            }
        }
        was_connected = true;
        if redis_up == Some(false) {
            inner.alert(Alert::new(AlertKind::RedisRestored, format!("node {node} reaches Redis again")));
        }
        redis_up = Some(true);
        if !registered {
            // A registration that could not read what Redis holds is not half-applied: it is
            // retried whole at the next heartbeat.
            let result = match load_online(&inner, &hub).await {
                Ok(()) => reconcile_own_state(&inner, &hub).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => registered = true,
                Err(e) => inner.redis_error(Step::Register, &e, "retried at the next heartbeat"),
            }
        }
        let due: Vec<_> = resync_at.iter().filter(|t| **t <= now).copied().collect();
        if !due.is_empty() {
            resync_at.retain(|t| *t > now);
            super::inbound::resync_all(&inner).await;
        }
        // Right after (re)connecting this node cannot tell a dead node from one that is still
        // reconnecting, so it reaps only once it has been connected for a whole node_timeout.
        if now.duration_since(connected_since) >= node_timeout {
            reap(&inner, node).await;
        }
    }
}

/// Loads who is online anywhere in the cluster, per app (watchlist initial states). Stops at
/// the first error: the apps loaded so far are right, the rest keep their previous view.
async fn load_online(inner: &Inner, hub: &herald_core::hub::Hub) -> Result<(), Error> {
    for app in hub.apps().ids() {
        let fields: Vec<String> = inner.client.hkeys(inner.names.presence(&app, ONLINE)).await?;
        let users = fields.into_iter().filter_map(|f| f.split_once('|').map(|(_, u)| Arc::from(u)));
        hub.namespace(&app).users.set_cluster_online(users);
    }
    Ok(())
}

/// Rewrites this node's part of the shared state from its local state: entries Redis still
/// holds for connections that left during an outage are removed (with their verdicts), local
/// counts, members and signed-in users are written again. Ordered so verdicts come out as on
/// a live change: removals first, then counts, then joins. Nothing is queued unless every read
/// succeeded (a failed read would make stale entries look absent).
async fn reconcile_own_state(inner: &Inner, hub: &herald_core::hub::Hub) -> Result<(), Error> {
    let node = hub.node();
    let own = |fields: Vec<String>| -> Vec<Arc<str>> {
        fields
            .into_iter()
            .filter_map(|f| {
                let (n, u) = f.split_once('|')?;
                (n.parse::<u32>().ok()? == node).then(|| Arc::from(u))
            })
            .collect()
    };
    let (mut removals, mut counts, mut joins) = (Vec::new(), Vec::new(), Vec::new());
    for app_id in hub.apps().ids() {
        let app: Arc<str> = Arc::from(app_id.as_str());
        let ns = hub.namespace(&app_id);
        let mut channels: std::collections::BTreeSet<Arc<str>> = inner
            .client
            .smembers::<Vec<String>, _>(inner.names.node_entries(&app_id, node))
            .await?
            .into_iter()
            .map(|c| Arc::from(c.as_str()))
            .collect();
        channels.extend(ns.local_counts().into_iter().map(|(c, _)| c));
        channels.remove(ONLINE);
        for channel in &channels {
            if ChannelKind::of(channel).is_presence() {
                let fields: Vec<String> = inner.client.hkeys(inner.names.presence(&app_id, channel)).await?;
                for user_id in own(fields) {
                    removals.push(Op::Settle {
                        app: app.clone(),
                        change: LocalChange::MemberLeft { channel: channel.clone(), user_id },
                    });
                }
            }
            counts.push(Op::Settle {
                app: app.clone(),
                change: LocalChange::Count { channel: channel.clone(), local: 0 },
            });
        }
        let online: Vec<String> = inner.client.hkeys(inner.names.presence(&app_id, ONLINE)).await?;
        for user_id in own(online) {
            removals.push(Op::Settle { app: app.clone(), change: LocalChange::UserOffline { user_id } });
        }
        for (channel, user_id, user_info) in ns.local_members() {
            joins.push(Op::Change {
                app: app.clone(),
                change: LocalChange::MemberJoined { channel, user_id, user_info },
            });
        }
        for user_id in ns.users.local_users() {
            joins.push(Op::Change { app: app.clone(), change: LocalChange::UserOnline { user_id } });
        }
    }
    for op in removals.into_iter().chain(counts).chain(joins) {
        inner.enqueue(op);
    }
    Ok(())
}

/// Finds nodes silent for longer than `node_timeout` and removes their state.
async fn reap(inner: &Inner, me: u32) {
    let cutoff = now_ms() - inner.config.node_timeout.as_millis() as i64;
    let dead: Vec<String> =
        match inner.client.zrangebyscore(inner.names.nodes(), "-inf", cutoff as f64, false, None).await {
            Ok(d) => d,
            Err(e) => {
                inner.redis_error(Step::Reap, &e, "dead nodes are looked for again at the next heartbeat");
                return;
            }
        };
    for node in dead {
        let Ok(id) = node.parse::<u32>() else { continue };
        if id == me {
            continue;
        }
        let lock = inner.names.reap_lock(id);
        let got: Result<Option<String>, _> =
            inner.client.set(lock, "1", Some(Expiration::PX(REAP_LOCK_MS)), Some(SetOptions::NX), false).await;
        match got {
            Ok(Some(_)) => {}
            Ok(None) => continue, // another node is reaping it
            Err(e) => {
                // The node stays registered, so it is found again at the next heartbeat.
                inner.redis_error(Step::Reap, &e, "dead nodes are looked for again at the next heartbeat");
                continue;
            }
        }
        tracing::warn!(node = id, "node silent for longer than node_timeout: removing its connections' state");
        match remove_node_state(inner, id).await {
            Ok(()) => {
                if let Some(m) = inner.metrics() {
                    m.reaped_nodes.increment(1);
                }
                // Only the node holding the reap lock gets here, and only once: the dead node is
                // out of the node set now.
                let message =
                    format!("node {id} stopped heartbeating for longer than node_timeout; node {me} removed its state");
                inner.alert(Alert::new(AlertKind::NodeLost, message).detail("lost_node", id).detail("reaped_by", me));
            }
            // Not declared gone: it stays in the node set and whoever takes the reap lock once
            // it expires removes the rest (removing is idempotent: verdicts come only once).
            Err(e) => inner.redis_error(Step::Reap, &e, "the dead node's state is removed again in 30 s"),
        }
    }
}

/// Removes a node's state from Redis, reports the verdicts, tells every node, and only then
/// removes the node from the node set: on an error the node stays registered (and its
/// remaining state listed), so a later reap finds it again.
async fn remove_node_state(inner: &Inner, id: u32) -> Result<(), Error> {
    let Some(hub) = inner.hub() else { return Ok(()) };
    for app in hub.apps().ids() {
        remove_app_state(inner, &app, id).await?;
    }
    let n = &inner.names;
    let msg = serde_json::to_vec(&ControlMsg::NodeGone { n: id }).unwrap_or_default();
    let _: () = inner.client.publish(n.control(), Bytes::from(msg)).await?;
    let _: () = inner.client.zrem(n.nodes(), id.to_string()).await?;
    Ok(())
}

/// Removes what node `id` held for one app, channel by channel; its list of channels is
/// deleted last, so after an error the channels not yet removed are still listed.
async fn remove_app_state(inner: &Inner, app: &str, id: u32) -> Result<(), Error> {
    let n = &inner.names;
    let channels: Vec<String> = inner.client.smembers(n.node_entries(app, id)).await?;
    for channel in &channels {
        let channel = channel.as_str();
        let keys = vec![n.counts(app, channel), n.occupied(app), n.presence(app, channel)];
        let reply: Vec<Value> =
            inner.client.eval(scripts::REAP_CHANNEL, keys, vec![id.to_string(), channel.to_owned()]).await?;
        if channel == ONLINE {
            // Users whose last connection was on the dead node are offline now.
            for user in reply.iter().skip(1).filter_map(|v| v.as_string()) {
                inner.enqueue(Op::Control(ControlMsg::UserStatus { a: app.to_owned(), u: user, on: false }));
            }
            continue;
        }
        let Some(sink) = &inner.sink else { continue };
        let (kind, channel_name): (_, Arc<str>) = (ChannelKind::of(channel), Arc::from(channel));
        for user in reply.iter().skip(1).filter_map(|v| v.as_string()) {
            let user_id = Arc::from(user.as_str());
            let removed = || ChannelEvent::MemberRemoved { channel: channel_name.clone(), user_id };
            events::report(&**sink, app, EventKind::MemberRemoved, kind, removed);
        }
        if reply.first().and_then(|v| v.as_i64()) == Some(1) {
            events::report(&**sink, app, EventKind::Vacated, kind, || ChannelEvent::Vacated { channel: channel_name });
        }
    }
    let _: () = inner.client.del(n.node_entries(app, id)).await?;
    Ok(())
}

/// Graceful leave: remove whatever this node still holds and tell the others now.
pub(crate) async fn leave(inner: &Inner) {
    let me = inner.node();
    if let Err(e) = remove_node_state(inner, me).await {
        // Nothing to retry with: this node stays registered and the survivors reap it after
        // node_timeout, as if it had crashed.
        inner.redis_error(Step::Leave, &e, "the other nodes remove this node's state after node_timeout");
    }
    // Best effort: the process exits next, which closes both connections anyway.
    let quit = async { tokio::join!(inner.client.quit(), inner.subscriber.quit()) };
    let _ = tokio::time::timeout(Duration::from_secs(1), quit).await;
}
