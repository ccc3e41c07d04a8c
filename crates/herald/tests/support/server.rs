//! The server under test: the standard test app and config, starting herald in-process on
//! 127.0.0.1:0, and reading its `/metrics`.

use std::net::SocketAddr;

use herald::config::Config;
use herald_core::app::{App, AppLimits};

use super::{raw_http, Api, Client, APP_ID, KEY, SECRET};

pub(crate) fn app(id: &str, key: &str, secret: &str) -> App {
    App {
        id: id.into(),
        key: key.into(),
        secret: secret.into(),
        limits: AppLimits { enable_client_messages: true, ..AppLimits::default() },
    }
}

/// A config on 127.0.0.1:0 with the standard test app (client events on).
pub(crate) fn test_config() -> Config {
    Config {
        host: "127.0.0.1".into(),
        port: 0,
        apps: vec![app(APP_ID, KEY, SECRET)],
        default_app_in_use: false,
        shutdown_grace: 2,
        shutdown_drain_window_ms: 0,
        ..Config::default()
    }
}

pub(crate) struct TestServer {
    pub addr: SocketAddr,
    pub server: herald::RunningServer,
}

pub(crate) async fn start() -> TestServer {
    start_with(test_config()).await
}

pub(crate) async fn start_with(config: Config) -> TestServer {
    let server = herald::start(config).await.expect("server starts");
    TestServer { addr: server.local_addr(), server }
}

impl TestServer {
    pub(crate) fn ws_url(&self, key: &str) -> String {
        format!("ws://{}/app/{key}?protocol=7&client=js&version=8.4.0&flash=false", self.addr)
    }

    /// A connected client that has received `connection_established`.
    pub(crate) async fn client(&self) -> Client {
        Client::connect_established(&self.ws_url(KEY)).await
    }

    pub(crate) fn api(&self) -> Api {
        Api { addr: self.addr, app_id: APP_ID.into(), key: KEY.into(), secret: SECRET.into() }
    }
}

/// `test_config()` with the standard app's limits adjusted by `f`.
pub(crate) fn config_with_limits(f: impl FnOnce(&mut AppLimits)) -> Config {
    let mut c = test_config();
    f(&mut c.apps[0].limits);
    c
}

/// Value of an unlabelled metric in `GET /metrics` (0 when not yet exported).
pub(crate) async fn metric(addr: SocketAddr, name: &str) -> f64 {
    let resp = raw_http(addr, "GET", "/metrics", b"").await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.body
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().expect("metric value"))
}

/// A fresh, empty temp directory for `data_dir`, unique per process and name.
pub(crate) fn temp_data_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("herald-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
