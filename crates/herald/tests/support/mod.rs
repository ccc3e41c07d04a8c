//! Test harness shared by the black-box tests: starts herald on port 0 in-process and talks
//! to it only through real sockets — a WebSocket client and signed HTTP requests, both
//! implemented here independently of herald's own signing code. Every helper is re-exported
//! here, so a test file needs only `mod support; use support::*;`.
#![allow(dead_code)] // each test file uses a different subset of the helpers

mod api_fixtures;
mod cluster;
mod http_client;
mod process;
mod raw_ws;
mod server;
mod signing;
mod sql;
mod sql_servers;
mod tls;
mod webhooks;
mod ws_client;

// Each test file uses a different subset, so some of these globs are unused in any one test.
#[allow(unused_imports)]
pub(crate) use self::{
    api_fixtures::*, cluster::*, http_client::*, process::*, raw_ws::*, server::*, signing::*, sql::*, sql_servers::*,
    tls::*, webhooks::*, ws_client::*,
};

use std::time::Duration;

pub(crate) const APP_ID: &str = "app-id";
pub(crate) const KEY: &str = "app-key";
pub(crate) const SECRET: &str = "app-secret";

/// How long a test waits for something that should happen.
pub(crate) const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be reasonably sure something does NOT happen.
pub(crate) const QUIET: Duration = Duration::from_millis(300);

/// Polls `cond` until it holds or `within` elapses; returns whether it held.
pub(crate) async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// `eventually` for a condition that needs to await (an HTTP call).
pub(crate) async fn eventually_async<F: std::future::Future<Output = bool>>(
    within: Duration,
    mut cond: impl FnMut() -> F,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond().await
}
