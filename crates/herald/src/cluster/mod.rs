//! The Redis adapter: several herald nodes sharing one Redis (docs/CLUSTER.md).
//!
//! - Fan-out is interest-based: a node SUBSCRIBEs to a channel's pub/sub channel only while it
//!   has local subscribers (`inbound.rs`), so it receives only messages it must deliver.
//! - State other nodes must see (subscription counts, presence members, cache) is written to
//!   Redis under the owning node's id; verdicts (occupied/vacated, member added/removed) come
//!   from Lua scripts so exactly one node reports each (`worker.rs`, `scripts.rs`).
//! - Nodes heartbeat; a node silent for `node_timeout` is reaped by a survivor, which removes
//!   its state and tells everyone (`liveness.rs`), and sends the `node_lost` alert (one node
//!   per dead node: the reap lock). A node's heartbeat failing or succeeding again after a
//!   failure sends `redis_down` / `redis_restored` (per node: each its own connection).
//! - HTTP API queries read Redis, never other nodes (`query.rs`).
//! - Redis down: local delivery goes on (it never depends on Redis), `/ready` reports
//!   degraded, the client reconnects with backoff, and on reconnect the node re-registers its
//!   state and resubscribes. A failed read never passes for "nothing there": each step retries
//!   or marks what it could not load (`errors.rs` counts and logs them).
//! - Every task the adapter starts (worker, delayed removals, inbound, liveness, resubscribe,
//!   one per channel snapshot) runs on `Inner::tasks` until `Inner::stop`; [`RedisAdapter::leave`]
//!   ends them all.
//! - The debug console's entries reach a console on any node (`tap.rs`); nothing is published
//!   for it while no console is open anywhere.
//! - `fuzz.rs` is the body of the `cluster_wire` fuzz target (`crate::fuzzing`).

mod errors;
#[doc(hidden)]
pub(crate) mod fuzz;
mod inbound;
mod liveness;
mod query;
mod scripts;
mod tap;
mod wire;
mod worker;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::config::ReconnectPolicy;
use herald_core::adapter::{Adapter, Answer, BoxFuture, Forward, LocalChange, Query, QueryError};
use herald_core::events::EventSink;
use herald_core::hub::Hub;
use metrics::Counter;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use errors::{RedisErrors, Step};
use wire::Names;

/// How a node joins a cluster (config `[adapter]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    pub url: String,
    pub prefix: String,
    /// A node silent this long is declared dead and its state removed.
    pub node_timeout: Duration,
    /// How often a node refreshes its heartbeat.
    pub heartbeat: Duration,
    /// On graceful leave, how long this node keeps announcing the members and counts of the
    /// connections it drained, so clients that reconnect to another node in the meantime never
    /// appear to leave (set to the webhook removal delay).
    pub leave_grace: Duration,
    /// How long a removal (a user's last connection here left a presence channel, the local
    /// count of a channel dropped to 0, a user's last connection here closed) waits before it
    /// is settled in the shared state. Other nodes' subscribers are told at once; the verdicts
    /// (webhooks) wait, so a client that comes back on any node within the delay causes no
    /// removed+added or vacated+occupied pair. Set to the webhook removal delay.
    pub removal_delay: Duration,
}

/// Work for the worker task, queued without blocking from hot paths.
#[derive(Debug)]
pub(crate) enum Op {
    Forward {
        app: Arc<str>,
        msg: Forward,
    },
    Change {
        app: Arc<str>,
        change: LocalChange,
    },
    /// Publish a channel message only (tell the other nodes at once; no state change).
    Announce {
        app: Arc<str>,
        channel: Arc<str>,
        msg: wire::ChannelMsg,
    },
    /// A delayed removal: re-read this node's current local state for it and write that.
    Settle {
        app: Arc<str>,
        change: LocalChange,
    },
    Terminate {
        app: Arc<str>,
        user: String,
    },
    /// Publish an entry of the debug console for the nodes watching its app (`tap.rs`).
    Tap {
        app: Arc<str>,
        entry: Arc<crate::console::tap::Entry>,
    },
    /// Publish a control message (verdicts the worker turned into cluster news).
    Control(wire::ControlMsg),
    /// Answered once every op queued before it has been written (graceful leave).
    Flush(oneshot::Sender<()>),
}

/// (app id, channel name).
pub(crate) type ChannelKey = (Arc<str>, Arc<str>);

/// A channel this node listens to (or is about to).
enum Interest {
    /// SUBSCRIBE sent, snapshot loading: messages are buffered (at most
    /// `inbound::MAX_BUFFERED` messages and `inbound::MAX_BUFFERED_BYTES` bytes, `bytes` so far;
    /// the rest is dropped and counted), joins wait.
    Pending { buffered: Vec<bytes::Bytes>, bytes: usize, waiters: Vec<oneshot::Sender<()>> },
    /// Listening. `resync`: the snapshot could not be loaded (Redis error), so the replica
    /// lacks what happened before; the next reconcile reloads it.
    Active { resync: bool },
    /// The last local subscriber left and UNSUBSCRIBE is under way; messages are still applied.
    /// A join meanwhile waits (`waiters`) and, once the UNSUBSCRIBE is done, the channel is
    /// listened to again with a fresh snapshot, so the joiner never sees a replica that is
    /// about to be dropped.
    Dropping { waiters: Vec<oneshot::Sender<()>> },
}

/// Counters of the adapter (see docs/OPERATIONS.md for names).
pub(crate) struct ClusterMetrics {
    /// Messages received from Redis for a channel with no local subscriber (should stay ~0).
    pub unneeded: Counter,
    pub received: Counter,
    /// Operations that could not reach Redis (outage): cross-node messages lost, state to re-register.
    pub failed: Counter,
    /// Operations dropped because the queue to the worker was full.
    pub dropped: Counter,
    /// Debug-console entries not relayed to the other nodes (the relay's share was used up).
    pub console_skipped: Counter,
    /// Pub/sub messages missed because the subscription buffer overflowed.
    pub lagged: Counter,
    /// Messages dropped because a channel's buffer (snapshot loading) was full.
    pub buffer_overflow: Counter,
    pub reaped_nodes: Counter,
    /// Redis errors of the adapter's other steps, by step.
    pub errors: RedisErrors,
}

pub(crate) struct Inner {
    pub names: Names,
    /// Redis Cluster: channel traffic uses sharded pub/sub (SPUBLISH/SSUBSCRIBE), so each
    /// message goes only through the shard owning its channel.
    pub sharded: bool,
    pub config: ClusterConfig,
    pub client: Client,
    pub subscriber: SubscriberClient,
    ops: mpsc::Sender<Op>,
    /// Channels this node listens to, by (app, channel). parking_lot mutex: taken briefly on
    /// subscribe/unsubscribe and per inbound message; never across an await, never while a
    /// channel lock is held by the same thread (inbound applies updates after releasing it).
    interest: Mutex<HashMap<ChannelKey, Interest>>,
    hub: OnceLock<Weak<Hub>>,
    pub sink: Option<Arc<dyn EventSink>>,
    pub metrics: OnceLock<ClusterMetrics>,
    /// Removals (counts going down, members and users leaving) of connections closed while this
    /// node drains; applied at the end of `leave`, after `leave_grace`. parking_lot mutex, held
    /// only to push or take the list.
    deferred: Mutex<Vec<Op>>,
    /// Delayed removals in order, with the instant each becomes due (see `local_change`).
    delayed: mpsc::Sender<(tokio::time::Instant, Op)>,
    /// Every task of the adapter (see the module doc); waited for by `leave`.
    tasks: TaskTracker,
    /// Cancelled by `leave`: every task in `tasks` ends at its next await.
    stop: CancellationToken,
    /// Where `redis_down` / `redis_restored` and `node_lost` go (`liveness.rs`). Set once before
    /// `attach`, read without a lock.
    alerts: OnceLock<Arc<crate::alerts::Alerts>>,
    /// The debug console's tap: entries received from other nodes go to it (`tap.rs`). Set
    /// once before `attach`, read without a lock.
    tap: OnceLock<Arc<crate::console::tap::Tap>>,
}

impl Inner {
    pub(crate) fn hub(&self) -> Option<Arc<Hub>> {
        self.hub.get().and_then(Weak::upgrade)
    }
    pub(crate) fn node(&self) -> u32 {
        self.hub().map(|h| h.node()).unwrap_or(0)
    }
    pub(crate) fn metrics(&self) -> Option<&ClusterMetrics> {
        self.metrics.get()
    }
    /// Sends `alert` when alerts are set up.
    pub(crate) fn alert(&self, alert: crate::alerts::Alert) {
        if let Some(alerts) = self.alerts.get() {
            alerts.emit(alert);
        }
    }
    /// Runs `task` on the adapter's tracker until the adapter stops.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let stop = self.stop.clone();
        self.tasks.spawn(async move {
            stop.run_until_cancelled(task).await;
        });
    }
    /// Counts and (rate-limited) logs a Redis error of `step`; `then` says what happens next.
    pub(crate) fn redis_error(&self, step: Step, error: &fred::error::Error, then: &str) {
        if let Some(m) = self.metrics() {
            m.errors.record(step, error, then);
        }
    }
    fn enqueue(&self, op: Op) {
        if self.ops.try_send(op).is_err() {
            if let Some(m) = self.metrics() {
                m.dropped.increment(1);
            }
        }
    }
}

/// The Redis adapter. Create with [`RedisAdapter::new`], pass it to `Hub::new`, then
/// [`RedisAdapter::attach`] the hub to start it.
#[derive(Clone)]
pub struct RedisAdapter {
    inner: Arc<Inner>,
    /// Receivers of the worker queue and of the delayed-removal queue, taken by `attach`.
    ops_rx: Arc<Mutex<Option<OpReceivers>>>,
}

type OpReceivers = (mpsc::Receiver<Op>, mpsc::Receiver<(tokio::time::Instant, Op)>);

/// Changes that make something disappear for the rest of the cluster (deferred while draining).
fn is_removal(op: &Op) -> bool {
    matches!(
        op,
        Op::Change {
            change: LocalChange::Count { .. } | LocalChange::MemberLeft { .. } | LocalChange::UserOffline { .. },
            ..
        }
    )
}

/// Bound of the queue between hot paths and the worker.
const QUEUE: usize = 100_000;
/// Longest a subscription waits for the cluster before joining with local state only.
const PREPARE_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest `leave` waits for the worker to write what is queued.
const FLUSH_WAIT: Duration = Duration::from_secs(2);
/// Longest `leave` waits for the adapter's tasks to end once stopped (a Redis command in
/// flight gives up after its 3 s timeout at the latest).
const STOP_WAIT: Duration = Duration::from_secs(4);

/// Pub/sub messages the subscriber client holds for the inbound task (fred's broadcast
/// channel; fred's default is 32). Everything the other nodes send this node passes through it,
/// so a burst of connects or disconnects across the cluster overflowed 32 in the soak, by up to
/// 535 messages (docs/BENCHMARKS.md). fred preallocates each of the client's event channels at
/// this size (a pub/sub message is 136 bytes), so 4,096 costs a few MB, once per node.
const SUBSCRIPTION_BUFFER: usize = 4_096;

impl RedisAdapter {
    /// Builds the clients (no connection yet). Fails only on an invalid URL.
    pub fn new(config: ClusterConfig, sink: Option<Arc<dyn EventSink>>) -> Result<Self, String> {
        let redis_config = Config::from_url(&config.url).map_err(|e| format!("adapter.url: {e}"))?;
        let sharded = redis_config.server.is_clustered();
        let mut builder = Builder::from_config(redis_config);
        builder
            // Reconnect forever: 100 ms doubling to 1 s (nodes must be back well within
            // node_timeout of Redis returning, or survivors would reap them).
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 1_000, 2))
            .with_config(|c| c.fail_fast = true)
            .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(3))
            .with_connection_config(|c| c.connection_timeout = Duration::from_secs(2));
        let client = builder.build().map_err(|e| format!("adapter.url: {e}"))?;
        // Only the subscriber gets the large buffer (fred preallocates every event channel of a
        // client at this capacity).
        builder.with_performance_config(|p| {
            p.default_command_timeout = Duration::from_secs(3);
            p.broadcast_channel_capacity = SUBSCRIPTION_BUFFER;
        });
        let subscriber = builder.build_subscriber_client().map_err(|e| format!("adapter.url: {e}"))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let (delayed_tx, delayed_rx) = mpsc::channel(QUEUE);
        let inner = Arc::new(Inner {
            names: Names::new(&config.prefix),
            sharded,
            config,
            client,
            subscriber,
            ops: tx,
            interest: Mutex::new(HashMap::new()),
            hub: OnceLock::new(),
            sink,
            metrics: OnceLock::new(),
            deferred: Mutex::new(Vec::new()),
            delayed: delayed_tx,
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
            alerts: OnceLock::new(),
            tap: OnceLock::new(),
        });
        Ok(RedisAdapter { inner, ops_rx: Arc::new(Mutex::new(Some((rx, delayed_rx)))) })
    }

    /// Where the adapter reports Redis outages and reaped nodes (call before `attach`).
    pub(crate) fn use_alerts(&self, alerts: Arc<crate::alerts::Alerts>) {
        let _ = self.inner.alerts.set(alerts);
    }

    /// Relays the debug console's entries between the nodes (call before `attach`).
    pub(crate) fn use_tap(&self, tap: Arc<crate::console::tap::Tap>) {
        tap.use_relay(Arc::new(tap::TapRelay::new(Arc::downgrade(&self.inner))));
        let _ = self.inner.tap.set(tap);
    }

    /// The adapter's command client (shared connection; the alerts' once-per-cluster keys use it).
    pub(crate) fn client(&self) -> Client {
        self.inner.client.clone()
    }

    /// Connects (in the background; Redis may be down) and starts the worker, delayed-removal,
    /// inbound, resubscribe, liveness and console relay tasks.
    pub fn attach(&self, hub: &Arc<Hub>) {
        let inner = &self.inner;
        let _ = inner.hub.set(Arc::downgrade(hub));
        let m = &hub.metrics;
        let _ = inner.metrics.set(ClusterMetrics {
            unneeded: m.counter("herald_cluster_unneeded_messages_total"),
            received: m.counter("herald_cluster_messages_received_total"),
            failed: m.counter("herald_cluster_redis_failures_total"),
            dropped: m.counter("herald_cluster_ops_dropped_total"),
            console_skipped: m.counter("herald_cluster_console_entries_skipped_total"),
            buffer_overflow: m.counter("herald_cluster_buffer_overflow_total"),
            lagged: m.counter("herald_cluster_messages_lagged_total"),
            reaped_nodes: m.counter("herald_cluster_reaped_nodes_total"),
            errors: RedisErrors::new(m),
        });
        inner.client.connect();
        inner.subscriber.connect();
        inner.spawn(inbound::resubscribe(inner.clone(), inner.subscriber.reconnect_rx()));
        if let Some((rx, mut delayed)) = self.ops_rx.lock().take() {
            inner.spawn(worker::run(inner.clone(), rx));
            let weak = Arc::downgrade(inner);
            inner.spawn(async move {
                while let Some((due, op)) = delayed.recv().await {
                    tokio::time::sleep_until(due).await;
                    let Some(inner) = weak.upgrade() else { return };
                    inner.enqueue(op);
                }
            });
        }
        inner.spawn(inbound::run(inner.clone()));
        inner.spawn(liveness::run(inner.clone()));
        if let Some(tap) = inner.tap.get() {
            inner.spawn(tap::run(inner.clone(), tap.clone()));
        }
    }

    /// The usage accounting's view of Redis: the adapter's client under its key prefix.
    pub(crate) fn usage_shared(&self) -> crate::usage::shared::Shared {
        crate::usage::shared::Shared::new(self.inner.client.clone(), &self.inner.config.prefix)
    }

    /// Graceful leave, after local connections were closed: keep this node's members and
    /// counts for `leave_grace` (drained clients reconnect elsewhere meanwhile, so other nodes'
    /// subscribers never see them leave), then apply the deferred removals, stop the adapter's
    /// tasks and remove this node from the cluster now (instead of letting others wait for
    /// `node_timeout`).
    pub async fn leave(&self) {
        let inner = &self.inner;
        let deferred = std::mem::take(&mut *inner.deferred.lock());
        if !deferred.is_empty() {
            tokio::time::sleep(inner.config.leave_grace).await;
            for op in deferred {
                inner.enqueue(op);
            }
        }
        // Let the worker write what the closing connections queued: the marker is answered
        // once everything ahead of it in the queue is written.
        let (done, flushed) = oneshot::channel();
        let flush = async { inner.ops.send(Op::Flush(done)).await.is_ok() && flushed.await.is_ok() };
        if !matches!(tokio::time::timeout(FLUSH_WAIT, flush).await, Ok(true)) {
            tracing::warn!("cluster operations still queued at leave were not written");
        }
        // Stopped before this node's state is removed, so no heartbeat re-registers it after.
        inner.stop.cancel();
        inner.tasks.close();
        if tokio::time::timeout(STOP_WAIT, inner.tasks.wait()).await.is_err() {
            tracing::warn!("cluster tasks did not stop within {STOP_WAIT:?}");
        }
        tap::leave(inner).await;
        liveness::leave(inner).await;
    }
}

impl Adapter for RedisAdapter {
    fn is_clustered(&self) -> bool {
        true
    }

    fn prepare(&self, app_id: &str, channel: &str) -> Option<BoxFuture<()>> {
        let rx = inbound::prepare(&self.inner, app_id, channel)?;
        Some(Box::pin(async move {
            let _ = tokio::time::timeout(PREPARE_TIMEOUT, rx).await;
        }))
    }

    fn forward(&self, app_id: &str, msg: Forward) {
        self.inner.enqueue(Op::Forward { app: Arc::from(app_id), msg });
    }

    fn local_change(&self, app_id: &str, change: LocalChange) {
        let app: Arc<str> = Arc::from(app_id);
        let op = Op::Change { app: app.clone(), change };
        let draining = self.inner.hub().is_some_and(|h| !h.is_accepting());
        if draining && is_removal(&op) {
            self.inner.deferred.lock().push(op);
            return;
        }
        let Op::Change { change, .. } = op else { return };
        let node = self.inner.node();
        let announce = match &change {
            LocalChange::MemberLeft { channel, user_id } => {
                Some((channel.clone(), wire::ChannelMsg::Left { n: node, u: user_id.to_string() }))
            }
            LocalChange::Count { channel, local: 0 } => {
                Some((channel.clone(), wire::ChannelMsg::Count { n: node, c: 0 }))
            }
            LocalChange::UserOffline { .. } => None,
            _ => {
                self.inner.enqueue(Op::Change { app, change });
                return;
            }
        };
        if let Some((channel, msg)) = announce {
            self.inner.enqueue(Op::Announce { app: app.clone(), channel, msg });
        }
        // One FIFO for all delayed removals: same delay for all, so they settle in the order
        // they happened (member_removed before channel_vacated).
        let due = tokio::time::Instant::now() + self.inner.config.removal_delay;
        if self.inner.delayed.try_send((due, Op::Settle { app, change })).is_err() {
            if let Some(m) = self.inner.metrics() {
                m.dropped.increment(1);
            }
        }
    }

    fn terminate_user(&self, app_id: &str, user_id: &str) {
        self.inner.enqueue(Op::Terminate { app: Arc::from(app_id), user: user_id.to_owned() });
    }

    fn query(&self, app_id: &str, query: Query) -> Option<BoxFuture<Result<Answer, QueryError>>> {
        let inner = self.inner.clone();
        let app = app_id.to_owned();
        Some(Box::pin(async move { query::run(&inner, &app, query).await }))
    }

    fn health(&self) -> Result<(), String> {
        if self.inner.client.is_connected() && self.inner.subscriber.is_connected() {
            Ok(())
        } else {
            Err("Redis unreachable: serving local connections only".to_owned())
        }
    }
}
