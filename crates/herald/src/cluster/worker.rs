//! The worker: turns queued local changes and forwarded events into Redis commands, in
//! batches (one pipeline per batch, one round trip), in the order they were queued — so the
//! verdicts for one channel come back in the order its changes happened. Verdicts become
//! webhook events.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fred::clients::Pipeline;
use fred::error::Error;
use fred::prelude::*;
use fred::types::CustomCommand;
use herald_core::adapter::LocalChange;
use herald_core::events::{self, ChannelEvent};
use herald_protocol::channel::ChannelKind;
use tokio::sync::mpsc;

use super::errors::Step;
use super::scripts;
use super::wire::{cache_value, encode, ChannelMsg, ControlMsg, ONLINE};
use super::{Inner, Op};

/// Most operations per pipeline.
const BATCH: usize = 256;

/// What to do with a script's reply.
enum Verdict {
    None,
    Count {
        app: Arc<str>,
        channel: Arc<str>,
    },
    Added {
        app: Arc<str>,
        channel: Arc<str>,
        user: Arc<str>,
    },
    Removed {
        app: Arc<str>,
        channel: Arc<str>,
        user: Arc<str>,
    },
    /// A signed-in user's first (`on`) / last connection in the cluster.
    Online {
        app: Arc<str>,
        user: Arc<str>,
        on: bool,
    },
}

pub(crate) async fn run(inner: Arc<Inner>, mut rx: mpsc::Receiver<Op>) {
    let mut received = Vec::with_capacity(BATCH);
    let mut batch = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    let mut logged_failure = tokio::time::Instant::now() - Duration::from_secs(60);
    while rx.recv_many(&mut received, BATCH).await > 0 {
        for op in received.drain(..) {
            match op {
                Op::Flush(done) => flushes.push(done),
                op => batch.push(op),
            }
        }
        if !batch.is_empty() {
            write_batch(&inner, &mut batch, &mut logged_failure).await;
        }
        // Answered once the batch they arrived with is written.
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Writes a batch of ops in one pipeline (emptying `batch`) and reports the verdicts.
async fn write_batch(inner: &Inner, batch: &mut Vec<Op>, logged_failure: &mut tokio::time::Instant) {
    if !inner.client.is_connected() {
        // Fail fast: cross-node messages of an outage are lost (counted); state changes are
        // rewritten from local state when the connection returns (liveness.rs).
        if let Some(m) = inner.metrics() {
            m.failed.increment(batch.len() as u64);
        }
        if logged_failure.elapsed() > Duration::from_secs(10) {
            *logged_failure = tokio::time::Instant::now();
            tracing::warn!(
                dropped = batch.len(),
                "Redis unreachable: cross-node messages are being lost (counted in herald_cluster_redis_failures_total); local delivery continues"
            );
        }
        batch.clear();
        return;
    }
    let mut commands =
        Commands { inner, pipeline: inner.client.pipeline(), verdicts: Vec::with_capacity(batch.len() * 2) };
    for op in batch.drain(..) {
        queue(&mut commands, op).await;
    }
    let Commands { pipeline, verdicts, .. } = commands;
    let results: Vec<_> = pipeline.try_all::<Value>().await;
    let failed = results.iter().filter(|r| r.is_err()).count() as u64;
    if failed > 0 {
        if let Some(m) = inner.metrics() {
            m.failed.increment(failed);
        }
        if logged_failure.elapsed() > Duration::from_secs(10) {
            *logged_failure = tokio::time::Instant::now();
            let first = results.iter().find_map(|r| r.as_ref().err().map(|e| e.to_string()));
            tracing::warn!(failed, error = ?first, "Redis unreachable: cross-node messages and cluster state updates are being lost (counted in herald_cluster_redis_failures_total); local delivery continues");
        }
    }
    // Results that did succeed still carry verdicts.
    for (verdict, result) in verdicts.into_iter().zip(results) {
        if let Ok(value) = result {
            report(inner, verdict, value);
        }
    }
}

/// The pipeline being built, with one verdict handler per command queued in it.
struct Commands<'a> {
    inner: &'a Inner,
    pipeline: Pipeline<Client>,
    verdicts: Vec<Verdict>,
}

impl Commands<'_> {
    /// Keeps `verdicts` aligned with the pipeline's commands: a queued command gets its verdict
    /// handler; one that could not be queued (never expected: every argument is a plain
    /// string) gets none, and its operation is lost, counted and logged.
    fn queued(&mut self, queued: Result<(), Error>, verdict: Verdict) {
        match queued {
            Ok(()) => self.verdicts.push(verdict),
            Err(e) => self.inner.redis_error(Step::Pipeline, &e, "this cluster operation is lost"),
        }
    }

    /// `EVAL script keys args` (fred's pipeline has no Lua interface).
    async fn eval(&mut self, script: &'static str, keys: Vec<String>, args: Vec<String>, verdict: Verdict) {
        let mut argv: Vec<Value> = Vec::with_capacity(2 + keys.len() + args.len());
        argv.push(script.into());
        argv.push((keys.len() as i64).into());
        argv.extend(keys.into_iter().map(Value::from));
        argv.extend(args.into_iter().map(Value::from));
        // Offset 2: the first key, so a Redis Cluster routes the script to the key's slot.
        let cmd = CustomCommand::new_static("EVAL", fred::types::ClusterHash::Offset(2), false);
        let queued = self.pipeline.custom(cmd, argv).await;
        self.queued(queued, verdict);
    }

    /// PUBLISH of channel traffic (SPUBLISH on a Redis Cluster).
    async fn publish(&mut self, channel: String, body: Bytes) {
        let p = &self.pipeline;
        let queued = if self.inner.sharded { p.spublish(channel, body).await } else { p.publish(channel, body).await };
        self.queued(queued, Verdict::None);
    }

    /// PUBLISH on the control channel.
    async fn control(&mut self, body: Vec<u8>) {
        let queued = self.pipeline.publish(self.inner.names.control(), Bytes::from(body)).await;
        self.queued(queued, Verdict::None);
    }
}

/// Adds the commands of one op to the pipeline, and one verdict handler per command.
async fn queue(c: &mut Commands<'_>, op: Op) {
    let inner = c.inner;
    let n = &inner.names;
    let node = inner.node();
    // A delayed removal writes what is true now (the client may have come back meanwhile).
    let op = match op {
        Op::Settle { app, change } => match settle(inner, &app, change) {
            Some(change) => Op::Change { app, change },
            None => return,
        },
        other => other,
    };
    match op {
        Op::Announce { app, channel, msg } => {
            // Mark our entry as leaving, so nodes that load a snapshot before the removal settles
            // do not bring the member back; counts are announced as 0 (the field stays, so
            // the channel is not vacated before the delay).
            match &msg {
                ChannelMsg::Left { u, .. } => {
                    let field = format!("{node}|{u}");
                    let args = vec![field, scripts::LEAVING.to_owned()];
                    c.eval(scripts::MARK_LEAVING, vec![n.presence(&app, &channel)], args, Verdict::None).await;
                }
                ChannelMsg::Count { .. } => {
                    let args = vec![node.to_string(), "0".to_owned()];
                    c.eval(scripts::MARK_LEAVING, vec![n.counts(&app, &channel)], args, Verdict::None).await;
                }
                _ => {}
            }
            c.publish(n.channel(&app, &channel), encode(&msg, None)).await;
        }
        Op::Settle { .. } => {}
        Op::Forward { app, msg } => {
            if let Some(cache) = &msg.cache {
                let (value, px) = cache_value(cache);
                let expire = Some(Expiration::PX(px));
                let queued = c.pipeline.set(n.cache(&app, &msg.channel), value, expire, None, false).await;
                c.queued(queued, Verdict::None);
            }
            let body = encode(&ChannelMsg::Event { n: node, x: msg.exclude, c: msg.cache }, Some(&msg.frame));
            c.publish(n.channel(&app, &msg.channel), body).await;
        }
        Op::Change { app, change } => match change {
            LocalChange::Count { channel, local } => {
                let keys = vec![n.counts(&app, &channel), n.occupied(&app), n.node_entries(&app, node)];
                let args = vec![node.to_string(), local.to_string(), channel.to_string(), channel.to_string()];
                let verdict = Verdict::Count { app: app.clone(), channel: channel.clone() };
                c.eval(scripts::SET_COUNT, keys, args, verdict).await;
                let body = encode(&ChannelMsg::Count { n: node, c: local }, None);
                c.publish(n.channel(&app, &channel), body).await;
            }
            LocalChange::MemberJoined { channel, user_id, user_info } => {
                let keys = vec![n.presence(&app, &channel), n.node_entries(&app, node)];
                let info = user_info.as_deref().unwrap_or("").to_owned();
                let args = vec![node.to_string(), user_id.to_string(), info, channel.to_string()];
                let verdict = Verdict::Added { app: app.clone(), channel: channel.clone(), user: user_id.clone() };
                c.eval(scripts::ADD_MEMBER, keys, args, verdict).await;
                let msg = ChannelMsg::Joined { n: node, u: user_id.to_string(), i: user_info.map(|i| i.to_string()) };
                c.publish(n.channel(&app, &channel), encode(&msg, None)).await;
            }
            LocalChange::MemberLeft { channel, user_id } => {
                let keys = vec![n.presence(&app, &channel)];
                let args = vec![node.to_string(), user_id.to_string()];
                let verdict = Verdict::Removed { app: app.clone(), channel: channel.clone(), user: user_id.clone() };
                c.eval(scripts::REMOVE_MEMBER, keys, args, verdict).await;
                let msg = ChannelMsg::Left { n: node, u: user_id.to_string() };
                c.publish(n.channel(&app, &channel), encode(&msg, None)).await;
            }
            LocalChange::UserOnline { user_id } => {
                let keys = vec![n.presence(&app, ONLINE), n.node_entries(&app, node)];
                let args = vec![node.to_string(), user_id.to_string(), String::new(), ONLINE.to_owned()];
                let verdict = Verdict::Online { app: app.clone(), user: user_id, on: true };
                c.eval(scripts::ADD_MEMBER, keys, args, verdict).await;
            }
            LocalChange::UserOffline { user_id } => {
                let keys = vec![n.presence(&app, ONLINE)];
                let args = vec![node.to_string(), user_id.to_string()];
                let verdict = Verdict::Online { app: app.clone(), user: user_id, on: false };
                c.eval(scripts::REMOVE_MEMBER, keys, args, verdict).await;
            }
            // Interest is dropped by the reconcile loop (inbound.rs).
            LocalChange::Vacated { .. } => {}
        },
        Op::Control(msg) => {
            c.control(serde_json::to_vec(&msg).unwrap_or_default()).await;
        }
        Op::Tap { app, entry } => {
            // Plain PUBLISH also on a Redis Cluster: the watching nodes SUBSCRIBE, not SSUBSCRIBE.
            let queued = c.pipeline.publish(n.tap(&app), super::tap::encode(node, &entry)).await;
            c.queued(queued, Verdict::None);
        }
        Op::Terminate { app, user } => {
            let msg = serde_json::to_vec(&ControlMsg::Terminate { a: app.to_string(), u: user }).unwrap_or_default();
            c.control(msg).await;
        }
        // Taken out of the batch by `run`.
        Op::Flush(_) => {}
    }
}

/// The change a delayed removal still has to make, given this node's current local state.
fn settle(inner: &Inner, app: &str, change: LocalChange) -> Option<LocalChange> {
    let hub = inner.hub()?;
    let ns = hub.namespace(app);
    match change {
        LocalChange::MemberLeft { channel, user_id } => {
            (!ns.has_local_member(&channel, &user_id)).then_some(LocalChange::MemberLeft { channel, user_id })
        }
        LocalChange::Count { channel, .. } => Some(LocalChange::Count { local: ns.local_count(&channel), channel }),
        LocalChange::UserOffline { user_id } => {
            (!ns.users.is_local(&user_id)).then_some(LocalChange::UserOffline { user_id })
        }
        other => Some(other),
    }
}

/// Turns a script's verdict into a webhook event (exactly one node sees each verdict).
fn report(inner: &Inner, verdict: Verdict, value: Value) {
    let code = value.as_i64().unwrap_or(0);
    if let Verdict::Online { app, user, on } = verdict {
        if code == 1 {
            inner.enqueue(Op::Control(ControlMsg::UserStatus { a: app.to_string(), u: user.to_string(), on }));
        }
        return;
    }
    let Some(sink) = &inner.sink else { return };
    let (app, event) = match verdict {
        Verdict::None => return,
        Verdict::Count { app, channel } => match code {
            1 => (app, ChannelEvent::Occupied { channel }),
            2 => (app, ChannelEvent::Vacated { channel }),
            _ => return,
        },
        Verdict::Added { app, channel, user } if code == 1 => {
            (app, ChannelEvent::MemberAdded { channel, user_id: user })
        }
        Verdict::Removed { app, channel, user } if code == 1 => {
            (app, ChannelEvent::MemberRemoved { channel, user_id: user })
        }
        _ => return,
    };
    let channel = ChannelKind::of(event.channel());
    events::report(&**sink, &app, event.kind(), channel, || event);
}
