//! The Pusher HTTP API (PROTOCOL.md 10): routes, request authentication, handlers.
//!
//! - `auth.rs`: reads the body (bounded), verifies the signed request, resolves the app.
//! - `error.rs`: [`ApiError`], the one place HTTP statuses and messages are decided.
//! - `events.rs`: `POST /events` and `POST /batch_events`; [`events::trigger_event`], the publish
//!   path the console's event creator shares.
//! - `channels.rs`: `GET /channels`, `GET /channels/{name}`, `GET /channels/{name}/users`.
//! - `users.rs`: `POST /users/{id}/terminate_connections`.
//! - `cluster_view.rs`: channel counts and lists, cluster-wide in a cluster (the console reads
//!   them too).
//! - `usage.rs`: `GET /usage`, the app's message and connection usage today (a herald extension).
//! - `fuzz.rs`: the publish-body checks of the `api_auth` fuzz target (`crate::fuzzing`).
//! - dead-letter admin routes, handled in `webhooks/admin.rs`.

mod auth;
mod channels;
pub(crate) mod cluster_view;
mod error;
pub(crate) mod events;
#[doc(hidden)]
pub(crate) mod fuzz;
pub(crate) mod info;
mod usage;
mod users;

pub(crate) use auth::{admit, authenticate};
pub(crate) use error::{json_ok, ApiError};

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::server::ServerState;
use crate::webhooks;

/// The API routes, mounted under the configured path prefix.
pub(crate) fn routes(state: Arc<ServerState>) -> Router<Arc<ServerState>> {
    Router::new()
        .route("/apps/{app_id}/events", post(events::trigger))
        .route("/apps/{app_id}/batch_events", post(events::trigger_batch))
        .route("/apps/{app_id}/channels", get(channels::list))
        .route("/apps/{app_id}/channels/{channel}", get(channels::show))
        .route("/apps/{app_id}/channels/{channel}/users", get(channels::users))
        .route("/apps/{app_id}/users/{user_id}/terminate_connections", post(users::terminate))
        .route("/apps/{app_id}/usage", get(usage::show))
        .route("/apps/{app_id}/webhooks/dead_letters", get(webhooks::admin::list))
        .route("/apps/{app_id}/webhooks/dead_letters/resend_all", post(webhooks::admin::resend_all))
        .route("/apps/{app_id}/webhooks/dead_letters/{dl_id}/resend", post(webhooks::admin::resend_one))
        // pusher-http-python (3.3.4 included) signs and requests this path (PROTOCOL.md 10.8).
        .route("/users/{user_id}/terminate_connections", post(users::terminate_alias))
        .layer(axum::middleware::from_fn_with_state(state, count_status))
}

/// Counts every API response by status.
async fn count_status(State(state): State<Arc<ServerState>>, req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    state.hub.metrics.http_request(res.status().as_u16());
    res
}
