//! The `herald` server: configuration, HTTP and WebSocket serving, metrics.
//!
//! The binary (`main.rs`) only loads the config, sets up logging and calls [`start`]; tests
//! call [`start`] directly with a config on port 0. Layout:
//! - [`config`]: defaults < file < env < flags, validated.
//! - [`apps`]: apps in a SQL table (`[app_store]`), and `herald apps …` to manage them.
//! - `server.rs`: router, listeners, graceful shutdown.
//! - `serve/`: the accept loops and per-connection HTTP serving (timeouts, caps, fd reserve).
//! - `ws/`: upgrade + per-connection task.
//! - `http/`: the signed Pusher HTTP API.
//! - `ops.rs`: `/metrics`, `/up`, `/ready`.
//! - `datadog.rs`: the server's metrics recorder (Prometheus, plus DogStatsD with `[datadog]`).
//! - [`tls`]: the `[tls]` certificate/key pair, checked, and swapped on reload.
//! - `memory.rs`: returning freed memory to the OS after mass disconnects.
//! - [`webhooks`]: webhook dispatch, durable outbox, dead letters.
//! - [`alerts`]: alerts to Slack and JSON webhooks (quotas, dead letters, Redis, nodes, reloads).
//! - `usage/`: message accounting per app and UTC day, quotas, the API rate limit.
//! - `fuzzing`: the bodies of the cargo-fuzz targets in `fuzz/` (docs/FUZZING.md), hidden.

pub mod alerts;
pub mod apps;
pub mod cluster;
pub mod config;
mod console;
mod datadog;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod log_limit;
mod memory;
mod ops;
mod reload;
mod serve;
mod server;
pub mod tls;
mod usage;
pub mod webhooks;
mod ws;

pub use reload::{ReloadReport, TlsReload};
pub use server::{start, RunningServer};
