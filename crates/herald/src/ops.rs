//! Operational endpoints: `GET /metrics` (Prometheus text), `GET /up` (liveness),
//! `GET /ready` (readiness: 503 once shutdown has begun).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

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
        // A node that lost Redis keeps serving its own connections, so it stays in rotation
        // and says it is degraded (docs/CLUSTER.md).
        match state.hub.adapter().health() {
            Ok(()) => (StatusCode::OK, "ready\n").into_response(),
            Err(reason) => (StatusCode::OK, format!("degraded: {reason}\n")).into_response(),
        }
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}
