//! Builds the server from a [`Config`]: the hub, the router, the listener; owns every task the
//! server starts and ends them all in one graceful shutdown sequence.
//!
//! Who owns which task:
//! - `ServerState::sockets` ([`TaskTracker`]): every task that holds a client socket — the
//!   upgrade and admission task, the connection task, the close handshake;
//! - `RunningServer::tasks`, ended by `RunningServer::stop` ([`CancellationToken`]): the accept
//!   loops (`serve/`), each HTTP connection until it is upgraded or ends, the sweeper, the
//!   fd sampler, the usage flusher (which flushes once more when stopped) and, with
//!   `[console]`, the console's history sampler;
//! - the cluster adapter and the webhooks own theirs the same way and end them in
//!   `RedisAdapter::leave` and `Webhooks::shutdown`.
//!
//! Shutdown (`RunningServer::shutdown`), in order:
//! 1. stop admitting connections — `/ready` answers 503 and new sockets get 4200;
//! 2. ask every connection to close with 4200 (pusher-js reconnects at once, elsewhere), in
//!    random order spread over `shutdown_drain_window_ms`;
//! 3. wait until every socket task has ended (connections gone, their close frames written
//!    and the peers' replies read or given up on) and every session is dropped, at most
//!    `shutdown_grace` seconds; a connection still open after that is logged and left to the
//!    process exit;
//! 4. cluster: graceful leave — deferred removals applied after `leave_grace`, queued
//!    operations written, the adapter's tasks stopped, this node's state removed;
//! 5. webhooks: release held removals and open batches into the outbox, deliver for up to
//!    5 s, leave the rest in the outbox for the next start, stop the workers; then the alert
//!    tasks (alerts still queued are dropped: they are never persisted);
//! 6. end the console's live logs, stop the HTTP server (in-flight API requests finish, at
//!    most 5 s) and the sweeper.
//!
//! Reload (`RunningServer::reload` in `reload.rs`, SIGHUP in `main.rs`): re-reads what can
//! change without a restart, part by part, keeping the old state of a part that fails: the apps
//! and the `[tls]` certificate/key pair.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::datadog::ServerRecorder;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use herald_core::adapter::{Adapter, LocalAdapter};
use herald_core::app::AppStore;
use herald_core::hub::{Hub, HubSettings};
use herald_core::metrics::Metrics;
use herald_core::outbox::OutboxLimits;
use herald_protocol::codes::CloseCode;
use metrics::{Gauge, Key, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alerts::{Alerts, ClusterKeys, QuotaKind, QuotaLevel};
use crate::apps::sql::SqlStore;
use crate::apps::{By, Directory, Replaced, StoreSync};
use crate::cluster::{ClusterConfig, RedisAdapter};
use crate::config::adapter::AdapterConfig;
use crate::config::Config;
use crate::memory::{self, Trimmer};
use crate::serve::fds::FdBudget;
use crate::serve::{self, ServeMetrics, Timeouts};
use crate::tls::{Tls, TlsMetrics};
use crate::webhooks::Webhooks;
use crate::ws::ConnectLimiter;
use crate::{http, ops, ws};

/// Shared by every handler and connection task.
pub(crate) struct ServerState {
    pub hub: Arc<Hub>,
    /// The apps served, replaceable at run time (the hub reads them through its `AppStore`).
    pub apps: Arc<Directory>,
    /// Keeps `apps` in step with a SQL app store; `None` when apps come from the config.
    pub store: Option<Arc<StoreSync>>,
    pub config: Arc<Config>,
    pub prometheus: PrometheusHandle,
    /// Always running; idle (no outbox opened) while no app has webhook targets.
    pub webhooks: Arc<Webhooks>,
    /// The Redis adapter when clustered (graceful leave on shutdown).
    pub cluster: Option<RedisAdapter>,
    /// Alerts to operators (`[[alerts]]`); shared with the webhooks and the adapter. The quota
    /// accounting calls `alerts.quota(…)`.
    pub alerts: Arc<Alerts>,
    /// Every task holding a client socket: upgrade + admission, the connection task, its close
    /// handshake (spawned by the connection task before it ends, so the count never touches 0
    /// in between). Shutdown waits for it to empty, so the process does not exit before the
    /// 4200 close frames are out.
    pub sockets: TaskTracker,
    /// The per-IP limit on new WebSocket connections; `None` when off.
    pub connect_limiter: Option<ConnectLimiter>,
    /// Message accounting, quotas and the API rate limit (`usage/`).
    pub usage: crate::usage::Usage,
    /// Told when an app crosses 80 % / 100 % of a quota (the alerts). Set once, at start-up or
    /// right after (`OnceLock`, read by the usage flusher every second); unset: nobody listens.
    pub quota_observer: std::sync::OnceLock<Arc<dyn crate::usage::QuotaObserver>>,
    /// `herald_tokio_alive_tasks`: set from the runtime's count each time `/metrics` is rendered
    /// (a count of live tasks that grows under steady load is a task leak).
    pub alive_tasks: Gauge,
    /// The live debug console's entries per watched app (`console/tap.rs`); every recording
    /// point goes through it, and it builds nothing while no console watches.
    pub console_tap: Arc<crate::console::tap::Tap>,
    /// The browser console (`[console]`): its sessions, login limit, live-log streams and
    /// history. `None` while it is off (no `/console` route is mounted then).
    pub console: Option<Arc<crate::console::Console>>,
}

impl ServerState {
    /// Hands a change of the apps to the webhooks (their targets) and the hub (sessions
    /// re-read, disabled or removed apps' connections closed with 4003).
    pub(crate) fn apply_app_changes(&self, replaced: Replaced) {
        if replaced.webhooks_changed {
            self.webhooks.set_apps(&self.apps.webhooks());
        }
        if !replaced.changes.is_empty() {
            self.hub.apps_changed(&replaced.changes);
        }
    }

    /// The app of a connection's key: from the directory, or, with a SQL store, looked up at
    /// once when the directory does not hold it (a new app's first connection).
    pub(crate) async fn resolve_app(&self, by: By, value: &str) {
        let Some(sync) = &self.store else { return };
        let known = match by {
            By::Key => self.apps.by_key(value).is_some(),
            By::Id => self.apps.by_id(value).is_some(),
        };
        if known || !plausible_name(value) {
            return;
        }
        if let Some(replaced) = sync.lookup(&self.apps, by, value).await {
            self.apply_app_changes(replaced);
        }
    }
}

/// Whether `value` could be an app key or id at all (the config's and the store's rule: 1–191
/// letters, digits, `_`, `-`), so garbage never reaches the database.
fn plausible_name(value: &str) -> bool {
    (1..=191).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

static METADATA: Metadata<'static> = Metadata::new("herald", Level::INFO, Some(module_path!()));

/// How long shutdown lets webhook workers deliver before leaving the rest in the outbox.
const WEBHOOK_DRAIN: Duration = Duration::from_secs(5);
/// How long shutdown lets the HTTP server finish in-flight requests.
const HTTP_STOP: Duration = Duration::from_secs(5);

/// A started server.
pub struct RunningServer {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    state: Arc<ServerState>,
    /// Cancelled by the last shutdown step: ends the accept loops, asks every HTTP connection
    /// to finish (graceful), ends the sweeper and the fd sampler.
    stop: CancellationToken,
    /// The accept loops, every HTTP connection task (until its upgrade or its end), the
    /// sweeper and the fd sampler.
    tasks: TaskTracker,
    /// TLS termination on the main listener (`[tls]`), reloaded by [`RunningServer::reload`].
    tls: Option<Arc<Tls>>,
}

/// Binds the listener and starts serving. Returns once the socket is bound.
pub async fn start(config: Config) -> std::io::Result<RunningServer> {
    let prometheus_recorder = PrometheusBuilder::new().build_recorder();
    let prometheus = prometheus_recorder.handle();
    // Every handle below registers on this one recorder: Prometheus, and DogStatsD too with
    // `[datadog]` (a bad address fails start-up naming `datadog.statsd_addr`).
    let recorder =
        Arc::new(ServerRecorder::new(prometheus_recorder, config.datadog.as_ref()).map_err(std::io::Error::other)?);
    let metrics = Metrics::new(recorder.clone());
    let settings = HubSettings {
        activity_timeout: config.activity_timeout,
        outbox: OutboxLimits {
            max_messages: config.outbound_queue_messages,
            max_bytes: config.outbound_queue_kb * 1024,
        },
        max_connections: config.max_connections,
        strict_protocol_param: config.strict_protocol_param,
        cache_ttl: Duration::from_secs(config.cache_ttl),
        subscription_count_threshold: config.subscription_count_threshold,
        subscription_count_interval: Duration::from_secs(config.subscription_count_throttle),
    };
    let listener = bind(&config.host, config.port, config.listen_backlog).await?;
    let addr = listener.local_addr()?;
    let metrics_listener = match config.metrics_port {
        Some(port) => Some(bind(&config.metrics_host, port, 128).await?),
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().map(TcpListener::local_addr).transpose()?;
    // Webhooks before the hub: the hub gets the sink. Only opens the outbox (in data_dir)
    // when some app has webhook targets (or later, when `set_webhooks` first gives one some).
    let webhooks = Webhooks::start(&config, recorder.clone()).map_err(std::io::Error::other)?;
    let apps = Arc::new(Directory::new(config.apps.clone(), config.webhooks.clone()));
    // One app store: webhooks sign with the credentials the hub authenticates with.
    webhooks.use_app_store(apps.clone());
    let store = match config.app_store.sql() {
        Some(sql) => {
            let store = SqlStore::connect_lazy(sql).map_err(std::io::Error::other)?;
            let sync = Arc::new(StoreSync::new(store, sql.cache_ttl));
            // The first load before serving, so the first connections find their apps; a store
            // that is down now is retried by the refresh task (the node is not ready until then).
            match sync.refresh(&apps).await {
                Ok(_) => webhooks.set_apps(&apps.webhooks()),
                Err(e) => tracing::warn!("app store not loaded at start-up, retrying every second: {e}"),
            }
            Some(sync)
        }
        None => None,
    };
    // The debug console's entries: the sink tees channel events and subscriptions to it, the
    // webhook workers and (in a cluster) the adapter's relay use it too.
    let console_tap = Arc::new(crate::console::tap::Tap::default());
    webhooks.use_tap(console_tap.clone());
    let sink: Option<Arc<dyn herald_core::events::EventSink>> =
        Some(Arc::new(crate::console::tap::TapSink { webhooks: webhooks.sink(), tap: console_tap.clone() }));
    // Cluster verdicts (occupied/vacated, member added/removed) are reported by the adapter.
    let cluster = match &config.adapter {
        AdapterConfig::Redis(c) => {
            let c =
                ClusterConfig { removal_delay: Duration::from_millis(config.webhook_removal_delay_ms), ..c.clone() };
            Some(RedisAdapter::new(c, sink.clone()).map_err(std::io::Error::other)?)
        }
        AdapterConfig::Local => None,
    };
    let adapter: Arc<dyn Adapter> = match &cluster {
        Some(redis) => Arc::new(redis.clone()),
        None => Arc::new(LocalAdapter),
    };
    let hub = Hub::new(apps.clone(), settings, metrics, sink, adapter);
    // After the hub (its metrics and node id), before the adapter starts (it reports to it).
    let alerts = Alerts::start(&config.alerts, &hub.metrics, hub.node()).map_err(std::io::Error::other)?;
    webhooks.use_alerts(alerts.clone());
    if let Some(redis) = &cluster {
        if let AdapterConfig::Redis(c) = &config.adapter {
            alerts.use_cluster(ClusterKeys { client: redis.client(), prefix: c.prefix.clone() });
        }
        redis.use_alerts(alerts.clone());
        redis.use_tap(console_tap.clone());
        redis.attach(&hub);
    }
    let connect_limiter = ConnectLimiter::new(
        config.ws_connect_rate_per_ip,
        config.ws_connect_burst_per_ip,
        hub.metrics.counter("herald_ws_rate_limited_total"),
        hub.metrics.counter("herald_ws_rate_limit_untracked_total"),
    );
    let alive_tasks = recorder.register_gauge(&Key::from_static_name("herald_tokio_alive_tasks"), &METADATA);
    let usage = crate::usage::Usage::new(&config.data_dir, cluster.as_ref().map(RedisAdapter::usage_shared));
    webhooks.count_requests_in(usage.requests.clone());
    // Quota crossings become alerts (once per app, kind and level per 24 h, per cluster) when
    // some alert target is configured.
    let quota_observer = std::sync::OnceLock::new();
    if !config.alerts.is_empty() {
        let observer = Arc::new(crate::alerts::QuotaAlerts(alerts.clone()));
        let _ = quota_observer.set(observer as Arc<dyn crate::usage::QuotaObserver>);
    }
    let console = config.console.clone().map(|c| crate::console::Console::new(c, config.tls.is_some()));
    let state = Arc::new(ServerState {
        usage,
        quota_observer,
        connect_limiter,
        hub,
        apps,
        store,
        config: Arc::new(config),
        prometheus,
        webhooks,
        cluster,
        alerts,
        sockets: TaskTracker::new(),
        alive_tasks,
        console_tap,
        console: console.map(Arc::new),
    });

    let tls = match &state.config.tls {
        Some(paths) => {
            let metrics = &state.hub.metrics;
            let tls_metrics = TlsMetrics {
                handshake_failures: metrics.counter("herald_tls_handshake_failures_total"),
                reloads_ok: metrics.labelled_counter("herald_tls_reloads_total", "result", "ok"),
                reloads_error: metrics.labelled_counter("herald_tls_reloads_total", "result", "error"),
                not_after: recorder
                    .register_gauge(&Key::from_static_name("herald_tls_certificate_not_after_seconds"), &METADATA),
            };
            Some(Tls::new(paths.clone(), tls_metrics).map_err(std::io::Error::other)?)
        }
        None => None,
    };

    let (stop, tasks) = (CancellationToken::new(), TaskTracker::new());
    if let Some(sync) = &state.store {
        let weak = Arc::downgrade(&state);
        let apply = move |replaced: Replaced| {
            if let Some(state) = weak.upgrade() {
                state.apply_app_changes(replaced);
            }
        };
        tasks.spawn(sync.clone().run(state.apps.clone(), apply, stop.clone()));
    }
    tasks.spawn(crate::usage::run(Arc::downgrade(&state), stop.clone()));
    if state.console.is_some() {
        tasks.spawn(crate::console::run_history(Arc::downgrade(&state), stop.clone()));
    }
    let trims = memory::trims_counter(recorder.as_ref());
    tasks.spawn(sweep(Arc::downgrade(&state.hub), trims, tasks.clone(), stop.clone()));
    let budget = FdBudget::new(state.config.fd_reserve);
    tasks.spawn(budget.clone().run_sampler(stop.clone()));
    let timeouts = Timeouts {
        header_read: Duration::from_secs(state.config.http_header_read_timeout),
        keep_alive: Duration::from_secs(state.config.http_keep_alive_timeout),
    };
    let metrics = &state.hub.metrics;
    let serve_metrics = |listener: &'static str| ServeMetrics {
        refused: metrics.labelled_counter("herald_http_connections_refused_total", "listener", listener),
        header_timeouts: metrics.counter("herald_http_header_timeouts_total"),
        accept_errors: metrics.counter("herald_accept_errors_total"),
        paused: metrics.counter("herald_accept_paused_total"),
    };
    if let Some(ops) = metrics_listener {
        let options = serve::Options {
            timeouts,
            max_pending: serve::METRICS_MAX_CONNECTIONS,
            hold_permit: true,
            respect_fd_reserve: false,
            tls: None,
        };
        let accept = serve::accept_loop(
            ops,
            metrics_router(state.clone()),
            options,
            budget.clone(),
            serve_metrics("metrics"),
            tasks.clone(),
            stop.clone(),
        );
        tasks.spawn(accept);
    }
    let options = serve::Options {
        timeouts,
        max_pending: state.config.max_pending_connections,
        hold_permit: false,
        respect_fd_reserve: true,
        tls: tls.clone(),
    };
    let accept = serve::accept_loop(
        listener,
        router(state.clone()),
        options,
        budget,
        serve_metrics("main"),
        tasks.clone(),
        stop.clone(),
    );
    tasks.spawn(accept);
    Ok(RunningServer { addr, metrics_addr, state, stop, tasks, tls })
}

/// Binds the first address `host` resolves to with an accept queue of `backlog` (tokio's
/// `TcpListener::bind` asks for 1024; a node holding 100k+ connections sees more than that
/// reconnect at once after a restart).
async fn bind(host: &str, port: u16, backlog: u64) -> std::io::Result<TcpListener> {
    let backlog = u32::try_from(backlog).unwrap_or(u32::MAX);
    let mut last_error = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        // As std and tokio do for listeners: a restarted node can bind while old connections
        // linger in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(backlog)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, format!("{host} resolves to no address"))
    }))
}

/// Closes every connection with 4200, spread evenly over `window` in random order, so
/// reconnecting clients arrive at the other nodes as a trickle, not a stampede.
async fn drain(hub: &Hub, window: Duration) {
    const SLICES: u32 = 20;
    let message = "Server is shutting down; reconnect";
    if window.is_zero() {
        hub.close_all(CloseCode::RECONNECT, message);
        return;
    }
    let conns = hub.connections();
    // Up to SLICES evenly spaced slices over the whole window (fewer connections: one each).
    let slices = conns.len().clamp(1, SLICES as usize);
    let per_slice = conns.len().div_ceil(slices).max(1);
    let gap = window / slices as u32;
    for (i, slice) in conns.chunks(per_slice).enumerate() {
        if i > 0 {
            tokio::time::sleep(gap).await;
        }
        for conn in slice {
            conn.outbox.close(CloseCode::RECONNECT, message);
        }
    }
    // Anything that connected meanwhile (admission already refuses new sockets).
    hub.close_all(CloseCode::RECONNECT, message);
}

/// Every minute, drops empty channels whose cached event expired; every 10 s, checks whether a
/// wave of disconnects or unsubscribes left freed memory to give back to the OS (see
/// `memory.rs`; sampled often enough to see the peak of a short spike; the trim runs on `tasks`
/// and is counted in `trims`). Ends at `stop`.
async fn sweep(hub: Weak<Hub>, trims: metrics::Counter, tasks: TaskTracker, stop: CancellationToken) {
    let mut sweep = tokio::time::interval(Duration::from_secs(60));
    let mut memory_check = tokio::time::interval(Duration::from_secs(10));
    let mut trimmer = Trimmer::default();
    loop {
        tokio::select! {
            _ = sweep.tick() => match hub.upgrade() {
                Some(hub) => hub.sweep(),
                None => return,
            },
            _ = memory_check.tick() => match hub.upgrade() {
                Some(hub) => {
                    if trimmer.observe(hub.footprint()) {
                        trims.increment(1);
                        tasks.spawn_blocking(memory::trim);
                    }
                }
                None => return,
            },
            () = stop.cancelled() => return,
        }
    }
}

/// The main port's routes. `/metrics` is served here only without a metrics listener, so that
/// setting `metrics_port` takes Prometheus off the public port.
fn router(state: Arc<ServerState>) -> Router {
    let prefix = state.config.path_prefix.clone();
    let realtime = Router::new().route("/app/{key}", get(ws::ws_upgrade)).merge(http::routes(state.clone()));
    let realtime = if prefix.is_empty() { realtime } else { Router::new().nest(&prefix, realtime) };
    let realtime =
        if state.config.metrics_port.is_none() { realtime.route("/metrics", get(ops::metrics)) } else { realtime };
    // The console (`[console]`) at /console, outside `path_prefix`; without it, 404 as any
    // unknown path.
    let realtime = match &state.console {
        Some(_) => realtime.merge(crate::console::router(state.clone())),
        None => realtime,
    };
    realtime
        .route("/up", get(ops::up))
        .route("/ready", get(ops::ready))
        .fallback(|| async { (StatusCode::NOT_FOUND, "Not found\n") })
        .with_state(state)
}

/// The metrics listener's routes: `/up`, `/ready`, `/metrics` only.
fn metrics_router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/metrics", get(ops::metrics))
        .route("/up", get(ops::up))
        .route("/ready", get(ops::ready))
        .fallback(|| async { (StatusCode::NOT_FOUND, "Not found\n") })
        .with_state(state)
}

impl RunningServer {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics listener's address, when `metrics_port` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    pub(crate) fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    /// The node's state (tests inspect counts through it).
    pub fn hub(&self) -> &Arc<Hub> {
        &self.state.hub
    }

    /// Replaces the per-app webhook configuration (`Webhooks::set_apps`, which a reload reaches
    /// through `ServerState::apply_app_changes`); tests use it to change webhooks alone.
    #[doc(hidden)]
    pub fn set_webhooks(&self, apps: &std::collections::HashMap<String, crate::webhooks::config::AppWebhooks>) {
        self.state.webhooks.set_apps(apps);
    }

    /// Raises a quota alert as the quota accounting does (`Alerts::quota`); for tests.
    #[doc(hidden)]
    pub fn raise_quota_alert(&self, app_id: &str, kind: QuotaKind, level: QuotaLevel, used: u64, limit: u64) {
        self.state.alerts.quota(app_id, kind, level, used, limit);
    }

    /// TLS termination, when `[tls]` is configured (reloaded by `reload.rs`).
    pub(crate) fn tls(&self) -> Option<&Arc<Tls>> {
        self.tls.as_ref()
    }

    /// Whether the main port serves TLS (`[tls]`).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Graceful shutdown: the sequence of the module doc, step by step.
    pub async fn shutdown(self) {
        let state = &self.state;
        let hub = &state.hub;
        // 1.
        hub.stop_accepting();
        // 2.
        drain(hub, Duration::from_millis(state.config.shutdown_drain_window_ms)).await;
        // 3. Sessions end with their connection task; `all_disconnected` also covers one held
        // in-process (the core's API allows it).
        state.sockets.close();
        let grace = Duration::from_secs(state.config.shutdown_grace);
        let drained = tokio::time::timeout(grace, async {
            state.sockets.wait().await;
            hub.all_disconnected().await;
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                remaining = hub.connection_count(),
                tasks = state.sockets.len(),
                "shutdown grace elapsed with connections still open"
            );
        }
        // 4.
        if let Some(cluster) = &state.cluster {
            cluster.leave().await;
        }
        // 5.
        state.webhooks.shutdown(WEBHOOK_DRAIN).await;
        // Alerts are never persisted: what is still queued is dropped.
        state.alerts.shutdown().await;
        // 6. Open console live logs end first: their connections can then finish.
        if let Some(console) = &state.console {
            console.closing.cancel();
        }
        self.stop.cancel();
        self.tasks.close();
        if tokio::time::timeout(HTTP_STOP, self.tasks.wait()).await.is_err() {
            tracing::warn!("HTTP server did not stop within 5 s");
        }
    }
}
