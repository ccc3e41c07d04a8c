//! Operational endpoints: `GET /metrics` (Prometheus text), `GET /up` (liveness),
//! `GET /ready` (readiness: 503 once shutdown has begun or while an app store has never
//! answered; `degraded` while Redis or the app store is unreachable).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::apps::StoreHealth;
use crate::server::ServerState;

pub(crate) async fn metrics(State(state): State<Arc<ServerState>>) -> Response {
    // Read at scrape time: the runtime counts its live tasks itself, so nothing on the hot path
    // pays for this gauge.
    state.alive_tasks.set(tokio::runtime::Handle::current().metrics().num_alive_tasks() as f64);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.prometheus.render()).into_response()
}

pub(crate) async fn up() -> &'static str {
    "OK\n"
}

pub(crate) async fn ready(State(state): State<Arc<ServerState>>) -> Response {
    if state.hub.is_accepting() {
        // A node that lost Redis or its app store keeps serving what it has, so it stays in
        // rotation and says it is degraded (docs/CLUSTER.md, docs/OPERATIONS.md); one whose app
        // store never answered since start-up has nothing to serve yet.
        let store = state.store.as_ref().map(|s| s.health());
        if store == Some(StoreHealth::NotLoaded) {
            return (StatusCode::SERVICE_UNAVAILABLE, "not ready: app store unreachable, no app loaded yet\n")
                .into_response();
        }
        let mut problems: Vec<String> = Vec::new();
        if let Err(reason) = state.hub.adapter().health() {
            problems.push(reason.to_string());
        }
        if store == Some(StoreHealth::Unreachable) {
            problems.push("app store unreachable (serving the apps loaded before)".to_owned());
        }
        if problems.is_empty() {
            (StatusCode::OK, "ready\n").into_response()
        } else {
            (StatusCode::OK, format!("degraded: {}\n", problems.join("; "))).into_response()
        }
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}
