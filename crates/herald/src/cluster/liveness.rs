//! Node liveness: heartbeats, reaping dead nodes, re-registering after an outage, leaving.
//!
//! Every node writes `now` into `P:nodes` every `heartbeat`. Every `heartbeat` each node also
//! looks for nodes older than `node_timeout`; the first to take the reap lock for a dead node
//! removes its state channel by channel (Lua, so verdicts are exact), reports the resulting
//! vacated / member_removed webhooks, and publishes `NodeGone` so every node drops the dead
//! node's members from its replicas (member_removed to local subscribers). Upper bound from
//! crash to cleanup: `node_timeout + heartbeat`.
//!
//! If this node's own heartbeat entry was missing (first start, or it was reaped during an
//! outage), it re-registers everything it holds locally.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fred::prelude::*;
use herald_core::adapter::LocalChange;
use herald_core::events::ChannelEvent;
use herald_protocol::channel::ChannelKind;

use super::scripts;
use super::wire::{ControlMsg, ONLINE};
use super::{Inner, Op};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub(crate) async fn run(inner: Arc<Inner>) {
    let heartbeat = inner.config.heartbeat;
    let node_timeout = inner.config.node_timeout;
    let mut tick = tokio::time::interval(heartbeat);
    let mut was_connected = false;
    let mut connected_since = tokio::time::Instant::now();
    let mut resync_at: Vec<tokio::time::Instant> = Vec::new();
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
                load_online(&inner, &hub).await;
                reconcile_own_state(&inner, &hub).await;
                resync_at = vec![now + heartbeat * 2, now + node_timeout];
            }
            Ok(_) => {}
            Err(_) => {
                was_connected = false;
                continue;
            }
        }
        was_connected = true;
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

/// Loads who is online anywhere in the cluster, per app (watchlist initial states).
async fn load_online(inner: &Inner, hub: &herald_core::hub::Hub) {
    for app in hub.apps().ids() {
        let fields: Result<Vec<String>, _> = inner.client.hkeys(inner.names.presence(&app, ONLINE)).await;
        if let Ok(fields) = fields {
            let users = fields.into_iter().filter_map(|f| f.split_once('|').map(|(_, u)| Arc::from(u)));
            hub.namespace(&app).users.set_cluster_online(users);
        }
    }
}

/// Rewrites this node's part of the shared state from its local state: entries Redis still
/// holds for connections that left during an outage are removed (with their verdicts), local
/// counts, members and signed-in users are written again. Ordered so verdicts come out as on
/// a live change: removals first, then counts, then joins.
async fn reconcile_own_state(inner: &Inner, hub: &herald_core::hub::Hub) {
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
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|c| Arc::from(c.as_str()))
            .collect();
        channels.extend(ns.local_counts().into_iter().map(|(c, _)| c));
        channels.remove(ONLINE);
        for channel in &channels {
            if ChannelKind::of(channel).is_presence() {
                let fields: Vec<String> =
                    inner.client.hkeys(inner.names.presence(&app_id, channel)).await.unwrap_or_default();
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
        let online: Vec<String> = inner.client.hkeys(inner.names.presence(&app_id, ONLINE)).await.unwrap_or_default();
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
}

/// Finds nodes silent for longer than `node_timeout` and removes their state.
async fn reap(inner: &Inner, me: u32) {
    let cutoff = now_ms() - inner.config.node_timeout.as_millis() as i64;
    let dead: Vec<String> =
        match inner.client.zrangebyscore(inner.names.nodes(), "-inf", cutoff as f64, false, None).await {
            Ok(d) => d,
            Err(_) => return,
        };
    for node in dead {
        let Ok(id) = node.parse::<u32>() else { continue };
        if id == me {
            continue;
        }
        let lock = inner.names.reap_lock(id);
        let got: Result<Option<String>, _> =
            inner.client.set(lock, "1", Some(Expiration::PX(30_000)), Some(SetOptions::NX), false).await;
        if !matches!(got, Ok(Some(_))) {
            continue; // another node is reaping it
        }
        tracing::warn!(node = id, "node silent for longer than node_timeout: removing its connections' state");
        remove_node_state(inner, id).await;
        if let Some(m) = inner.metrics() {
            m.reaped_nodes.increment(1);
        }
    }
}

/// Removes a node's state from Redis, reports the verdicts, tells every node.
async fn remove_node_state(inner: &Inner, id: u32) {
    let Some(hub) = inner.hub() else { return };
    for app in hub.apps().ids() {
        remove_app_state(inner, &app, id).await;
    }
    let n = &inner.names;
    let _: Result<(), _> = inner.client.zrem(n.nodes(), id.to_string()).await;
    let msg = serde_json::to_vec(&ControlMsg::NodeGone { n: id }).unwrap_or_default();
    let _: Result<(), _> = inner.client.publish(n.control(), Bytes::from(msg)).await;
}

/// Removes what node `id` held for one app, channel by channel.
async fn remove_app_state(inner: &Inner, app: &str, id: u32) {
    let n = &inner.names;
    let channels: Vec<String> = inner.client.smembers(n.node_entries(app, id)).await.unwrap_or_default();
    for channel in &channels {
        let channel = channel.as_str();
        let keys = vec![n.counts(app, channel), n.occupied(app), n.presence(app, channel)];
        let reply: Result<Vec<Value>, _> =
            inner.client.eval(scripts::REAP_CHANNEL, keys, vec![id.to_string(), channel.to_owned()]).await;
        let Ok(reply) = reply else { continue };
        if channel == ONLINE {
            // Users whose last connection was on the dead node are offline now.
            for user in reply.iter().skip(1).filter_map(|v| v.as_string()) {
                inner.enqueue(Op::Control(ControlMsg::UserStatus { a: app.to_owned(), u: user, on: false }));
            }
            continue;
        }
        let Some(sink) = &inner.sink else { continue };
        let channel_name: Arc<str> = Arc::from(channel);
        for user in reply.iter().skip(1).filter_map(|v| v.as_string()) {
            let ev = ChannelEvent::MemberRemoved { channel: channel_name.clone(), user_id: Arc::from(user.as_str()) };
            if sink.wants(app, ev.name()) {
                sink.emit(app, ev);
            }
        }
        let vacated = reply.first().and_then(|v| v.as_i64()) == Some(1);
        if vacated && ChannelKind::of(channel) != ChannelKind::ServerToUser && sink.wants(app, "channel_vacated") {
            sink.emit(app, ChannelEvent::Vacated { channel: channel_name });
        }
    }
    let _: Result<(), _> = inner.client.del(n.node_entries(app, id)).await;
}

/// Graceful leave: remove whatever this node still holds and tell the others now.
pub(crate) async fn leave(inner: &Inner) {
    let me = inner.node();
    remove_node_state(inner, me).await;
    // Best effort: the process exits next, which closes both connections anyway.
    let quit = async { tokio::join!(inner.client.quit(), inner.subscriber.quit()) };
    let _ = tokio::time::timeout(Duration::from_secs(1), quit).await;
}
