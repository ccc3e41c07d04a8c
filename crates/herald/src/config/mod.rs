//! Server configuration: where settings come from, in which order, and what is valid.
//!
//! This module owns [`Config`], the fully resolved and validated configuration the rest of
//! the server reads, and the loader that builds it. It is split by source:
//!
//! * `file.rs`: the TOML schema (`herald.example.toml` documents every key) and the partial
//!   `Layer` every source is converted into;
//! * `env.rs`: `HERALD_*` environment variables;
//! * `cli.rs`: command-line flags (clap);
//! * `tls.rs`: the `[tls]` table (certificate and key paths; `crate::tls` checks the files);
//! * `datadog.rs`: the `[datadog]` table (DogStatsD address, prefix, tags, interval);
//! * `console.rs`: the `[console]` table (the browser console: on/off, username, password);
//! * `webhooks.rs`: validation of the per-app `[[apps.webhooks]]` targets;
//! * `adapter.rs`: the `[adapter]` section (single node or a Redis cluster);
//! * `alerts.rs`: the `[[alerts]]` tables (Slack and JSON alert targets);
//! * `app_store.rs`: the `[app_store]` section (apps from the config or from a SQL table);
//! * `validate.rs`: turning the stacked layers into a [`Config`], rejecting bad values;
//! * `error.rs`: [`ConfigError`];
//! * `fuzz.rs`: the body of the `config_toml` fuzz target (`crate::fuzzing`).
//!
//! # Precedence
//!
//! Built-in defaults < TOML file < environment variables < command-line flags. Each source
//! only overrides the settings it actually sets; the apps list is replaced as a whole (the
//! file's `[[apps]]`, or the single app given by `HERALD_APP_ID`/`_KEY`/`_SECRET`, or the one
//! given by `--app-id`/`--app-key`/`--app-secret`, highest source wins), unless
//! `[app_store]` names a SQL driver: then the database is the only source of apps and any of
//! those is an error. Loading never falls
//! back silently: a named file that cannot be read, an unknown key, or an unparsable value is
//! an error naming the key.

pub mod adapter;
mod alerts;
pub mod app_store;
mod cli;
pub mod console;
pub mod datadog;
mod env;
mod error;
mod file;
#[doc(hidden)]
pub(crate) mod fuzz;
pub(crate) mod reload;
pub mod tls;
mod validate;
mod webhooks;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::str::FromStr;

use clap::Parser;
use herald_core::app::{App, AppLimits};

use env::CONFIG_VAR;
pub use error::ConfigError;
pub use ipnet::IpNet;

// What the SQL app store (`crate::apps`) reuses to validate a row exactly like an `[[apps]]`
// table.
pub(crate) use file::FileApp;
pub(crate) use validate::{app_credentials, app_limits};
pub(crate) use webhooks::app_webhooks;

/// Log output format (`log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            _ => Err("expected \"human\" or \"json\"".to_string()),
        }
    }
}

/// The fully resolved, validated configuration. Built by [`load`] / [`load_from`];
/// [`Config::default`] is the built-in defaults (with the default app), handy in tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Listen address. Default `0.0.0.0`.
    pub host: String,
    /// Listen port; 0 lets the OS pick. Default 6001.
    pub port: u16,
    /// Prefix for every route: `""` or `/something` (no trailing `/`). Default `""`.
    pub path_prefix: String,
    /// Seconds, sent to clients in `pusher:connection_established`. Default 120, > 0.
    pub activity_timeout: u64,
    /// Seconds to wait for a pong before closing 4201. Default 30, > 0.
    pub pong_timeout: u64,
    /// Seconds a connection of an app with `require_authorized_connections` has to sign in
    /// before it is closed with 4009. Default 30, > 0.
    pub authorized_connection_timeout: u64,
    /// Largest inbound WebSocket message, KiB (larger → close 1009). Default 32, > 0.
    pub max_ws_message_kb: usize,
    /// Largest HTTP API request body, KiB. Default 256, > 0.
    pub max_http_body_kb: usize,
    /// Allowed skew of HTTP API `auth_timestamp`, seconds. Default 600.
    pub api_timestamp_tolerance: u64,
    /// Reject WebSocket connections without a supported `protocol` query parameter.
    /// Default false.
    pub strict_protocol_param: bool,
    /// Node-wide connection cap (over it → close 4100). `None` = unlimited (default).
    pub max_connections: Option<u64>,
    /// Per-connection outbound queue bound, in messages. Default 1000, > 0.
    pub outbound_queue_messages: usize,
    /// Per-connection outbound queue bound, in KiB. Default 1024, > 0.
    pub outbound_queue_kb: usize,
    /// Seconds to let connections drain on shutdown. Default 10.
    pub shutdown_grace: u64,
    /// Milliseconds over which shutdown spreads the 4200 closes of its connections, so the
    /// reconnecting clients do not stampede the surviving nodes at once. Default 2000; 0 closes
    /// all at once. Must be shorter than `shutdown_grace`.
    pub shutdown_drain_window_ms: u64,
    /// Length of the listening socket's accept queue (the kernel caps it at
    /// `net.core.somaxconn`). Default 4096: a reconnect storm after a restart or a network
    /// blip must not overflow it. 1..=65535.
    pub listen_backlog: u64,
    /// Lifetime of cache-channel entries, seconds. Default 1800, > 0.
    pub cache_ttl: u64,
    /// Channels with more subscribers than this get throttled `subscription_count` updates.
    /// Default 100.
    pub subscription_count_threshold: usize,
    /// Seconds between throttled `subscription_count` updates. Default 5, > 0.
    pub subscription_count_throttle: u64,
    /// Default [`LogFormat::Human`].
    pub log_format: LogFormat,
    /// A `tracing_subscriber::EnvFilter` directive. Default `info`.
    pub log_level: String,
    /// Directory for persistent state. Default `./herald-data` (relative to the working dir).
    pub data_dir: PathBuf,
    /// Milliseconds channel_vacated / member_removed webhooks are held back (and dropped if
    /// the channel is re-occupied / the user returns). Default 3000.
    pub webhook_removal_delay_ms: u64,
    /// Milliseconds a batch (apps with `batch_webhooks`) collects events. Default 50.
    pub webhook_batch_ms: u64,
    /// Largest number of events in one batched webhook request. Default 100, > 0.
    pub webhook_batch_max: usize,
    /// First retry delay in milliseconds (doubling, capped at 60 s). Default 1000, 1..=60000.
    pub webhook_retry_initial_ms: u64,
    /// Seconds a delivery is retried before it goes to the dead letters. Default 300, > 0.
    pub webhook_retry_max_elapsed: u64,
    /// Seconds before a webhook request counts as failed. Default 10, > 0.
    pub webhook_timeout: u64,
    /// Events buffered per app between the socket hot path and the webhook dispatcher (a full
    /// queue drops that app's events). Default 100000, > 0.
    pub webhook_queue_size: usize,
    /// Webhook deliveries per app the outbox holds at most; more are refused (counted).
    /// Default 50000, 1..=10000000; `apps[].webhook_max_pending` overrides it.
    pub webhook_max_pending: u64,
    /// Dead letters kept per app; the oldest are pruned beyond it. Default 10000,
    /// 1..=1000000; `apps[].webhook_dead_letters_max` overrides it.
    pub webhook_dead_letters_max: u64,
    /// Seconds a dead letter is kept. Default 604800 (7 days), 1..=31536000;
    /// `apps[].webhook_dead_letter_max_age` overrides it.
    pub webhook_dead_letter_max_age: u64,
    /// Channels per app remembered by the cache_miss de-duplication. Default 10000,
    /// 1..=1000000.
    pub webhook_cache_miss_dedup_max: usize,
    /// Peers whose `X-Forwarded-Proto` is believed (addresses or CIDR ranges of the TLS
    /// proxies in front of herald). Empty by default: the header is ignored, so no client can
    /// pass a plain connection off as TLS to a `force_tls` app.
    pub trusted_proxies: Vec<IpNet>,
    /// Seconds a connection has to deliver a complete request head, counted from its accept or
    /// from its previous response (slowloris bound). Default 10, 1..=300.
    pub http_header_read_timeout: u64,
    /// Seconds an HTTP connection may sit with no request in progress (kept alive after a
    /// response, or new and silent) before it is closed. Default 5, 1..=`http_header_read_timeout`.
    pub http_keep_alive_timeout: u64,
    /// Seconds an HTTP API request body has to arrive in full after its head (else 408 and
    /// the connection is closed). Default 30, 1..=3600.
    pub http_body_read_timeout: u64,
    /// Connections accepted but not yet answered once (no HTTP response and no WebSocket
    /// handshake yet); over it a new connection gets 503 and is closed. Default 4096.
    pub max_pending_connections: usize,
    /// New WebSocket connections per second allowed per client IP (IPv6: per /64), refilling
    /// a bucket of `ws_connect_burst_per_ip`; over it the upgrade gets 429. 0 (the default)
    /// turns the limit off.
    pub ws_connect_rate_per_ip: u64,
    /// Bucket size of `ws_connect_rate_per_ip`: connections one IP may open at once. Default 50.
    pub ws_connect_burst_per_ip: u64,
    /// File descriptors kept free: the main listener stops accepting while the open fds are
    /// within this many of `RLIMIT_NOFILE`, leaving them to the metrics listener, Redis, webhooks
    /// and the outbox. Default 64; 0 turns it off.
    pub fd_reserve: usize,
    /// A second listener (on `metrics_host`) serving only `/up`, `/ready` and `/metrics`,
    /// answered from the fd reserve while the main port is saturated; with it the main port no
    /// longer serves `/metrics`. `None` (the default): none, everything on the main port.
    pub metrics_port: Option<u16>,
    /// Where the metrics listener binds. Default `127.0.0.1`: Prometheus stays off the public
    /// network unless asked.
    pub metrics_host: String,
    /// TLS termination on `port` (`[tls]`); `None` (the default): plain HTTP and `ws://`.
    pub tls: Option<tls::TlsConfig>,
    /// Metrics also sent to DogStatsD (`[datadog]`); `None` (the default): Prometheus only.
    pub datadog: Option<datadog::DatadogConfig>,
    /// The browser console under `/console` (`[console]`); `None` (the default): off, every
    /// `/console` path is 404.
    pub console: Option<console::ConsoleConfig>,
    /// Single node or cluster (`[adapter]`).
    pub adapter: adapter::AdapterConfig,
    /// Where alerts go (`[[alerts]]`); empty (the default): no alerts.
    pub alerts: Vec<crate::alerts::AlertTarget>,
    /// Where apps come from (`[app_store]`): the config (`apps` below) or a SQL table.
    pub app_store: app_store::AppStoreConfig,
    /// Webhook targets per app id (only apps that have at least one target).
    pub webhooks: HashMap<String, crate::webhooks::config::AppWebhooks>,
    /// The configured apps; never empty with [`app_store::AppStoreConfig::Config`], always
    /// empty with a SQL store (its apps are read at run time).
    pub apps: Vec<App>,
    /// True when no app was configured anywhere and [`default_app`] was used; the server
    /// should print a warning, since its credentials are public. Never with a SQL store.
    pub default_app_in_use: bool,
    /// True for `herald check-config`: validate, report, exit without serving.
    pub check_only: bool,
    /// The config file that was loaded, if any.
    pub config_file: Option<PathBuf>,
    /// Non-fatal findings to log once logging is set up (e.g. unknown `HERALD_*` variables).
    pub warnings: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        validate::resolve(Vec::new(), None, false, Vec::new(), &app_store::AppStoreConfig::Config)
            .expect("built-in defaults are valid")
    }
}

impl Config {
    /// `host:port`, bracketing IPv6 literals, for binding.
    pub fn bind_addr(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The built-in app used when none is configured anywhere: id `app-id`, key `app-key`,
/// secret `app-secret`. Unlike the per-app default, client events are enabled on it
/// (`enable_client_messages = true`), a friendlier default for trying things out locally.
/// Its credentials are public, so it must never be used in production.
pub fn default_app() -> App {
    App {
        id: "app-id".to_string(),
        key: "app-key".to_string(),
        secret: "app-secret".to_string(),
        limits: AppLimits { enable_client_messages: true, ..AppLimits::default() },
    }
}

/// Loads the configuration from the process arguments and environment.
pub fn load() -> Result<Config, ConfigError> {
    load_from(std::env::args_os(), &process_env()?)
}

/// The process's `HERALD_*` environment variables (a value that is not UTF-8 is an error
/// naming the variable).
pub fn process_env() -> Result<HashMap<String, String>, ConfigError> {
    let mut env = HashMap::new();
    for (k, v) in std::env::vars_os() {
        let Some(k) = k.to_str().map(str::to_string) else {
            continue;
        };
        if !k.starts_with("HERALD_") {
            continue;
        }
        match v.into_string() {
            Ok(v) => {
                env.insert(k, v);
            }
            Err(v) => {
                return Err(ConfigError::InvalidValue {
                    key: k.trim_start_matches("HERALD_").to_ascii_lowercase(),
                    value: v.to_string_lossy().into_owned(),
                    source_name: k,
                    reason: "not valid UTF-8".to_string(),
                })
            }
        }
    }
    Ok(env)
}

/// Loads the configuration from explicit arguments (the first is the program name) and an
/// explicit environment map, so tests never touch the process environment.
///
/// Precedence: built-in defaults < TOML file < environment < flags (see the module docs).
pub fn load_from(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    env: &HashMap<String, String>,
) -> Result<Config, ConfigError> {
    let cli = cli::Cli::try_parse_from(args)?;

    // The file: --config wins over HERALD_CONFIG. No file at all is fine (defaults only).
    let config_file = cli.config.clone().or_else(|| env.get(CONFIG_VAR).map(PathBuf::from));
    let mut layers: Vec<(Source, file::Layer)> = Vec::new();
    if let Some(path) = &config_file {
        layers.push((Source::File, file::read(path)?));
    }
    let file_adapter = layers.first().and_then(|(_, l)| l.adapter.clone());
    let file_app_store = layers.first().and_then(|(_, l)| l.app_store.clone());
    let file_tls = layers.first().and_then(|(_, l)| l.tls.clone());
    let file_datadog = layers.first().and_then(|(_, l)| l.datadog.clone());
    let file_console = layers.first().and_then(|(_, l)| l.console.clone());
    let file_alerts = layers.first().and_then(|(_, l)| l.alerts.clone());
    let (env_layer, warnings) = env::layer(env)?;
    layers.push((Source::Env, env_layer));
    layers.push((Source::Flags, cli.layer()?));

    let app_store = app_store::resolve(file_app_store.as_ref(), env)?;
    let mut config = validate::resolve(layers, config_file, cli.check_only(), warnings, &app_store)?;
    config.adapter = adapter::resolve(file_adapter.as_ref(), env)?;
    config.datadog = datadog::resolve(file_datadog.as_ref(), env)?;
    config.console = console::resolve(file_console.as_ref(), env)?;
    config.alerts = alerts::resolve(file_alerts.as_deref())?;
    config.tls = tls::resolve(file_tls.as_ref(), env, (cli.tls_cert_file.clone(), cli.tls_key_file.clone()))?;
    // Fail fast on the files themselves (unreadable, no certificate or key, a key that does not
    // match, an expired leaf), so `herald check-config` reports them too.
    if let Some(tls) = &config.tls {
        crate::tls::load(tls)?;
    }
    Ok(config)
}

/// Where a setting came from; used to say so in validation errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    File,
    Env,
    Flags,
}

impl Source {
    /// How to refer to `key` as set by this source, e.g. `HERALD_PORT` or `--port`.
    pub(crate) fn name_of(self, key: &str) -> String {
        match self {
            Source::File => "the config file".to_string(),
            Source::Env => format!("HERALD_{}", key.to_ascii_uppercase()),
            Source::Flags => format!("--{}", key.replace('_', "-")),
        }
    }
}
