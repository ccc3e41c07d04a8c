//! `POST /apps/{id}/users/{user_id}/terminate_connections` (PROTOCOL.md 8.4, 10.8): closes every
//! connection signed in as the user with 4009.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::Response;
use herald_protocol::codes::CloseCode;
use serde_json::json;

use super::auth::authenticate;
use super::error::{json_ok, ApiError};
use crate::server::ServerState;

pub(crate) async fn terminate(
    State(state): State<Arc<ServerState>>,
    Path((app_id, user_id)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let authed = authenticate(&state, Some(&app_id), req).await?;
    terminate_user(&state, &authed.app.id, &user_id);
    Ok(json_ok(&json!({})))
}

/// The unprefixed path pusher-http-python signs; the app is the one owning `auth_key`.
pub(crate) async fn terminate_alias(
    State(state): State<Arc<ServerState>>,
    Path(user_id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let authed = authenticate(&state, None, req).await?;
    terminate_user(&state, &authed.app.id, &user_id);
    Ok(json_ok(&json!({})))
}

/// Closes the user's connections here, and asks the other nodes to do the same.
fn terminate_user(state: &ServerState, app_id: &str, user_id: &str) {
    for conn in state.hub.namespace(app_id).connections_of_user(user_id) {
        conn.outbox.close(CloseCode::UNAUTHORIZED, "You got disconnected by the app.");
    }
    state.hub.adapter().terminate_user(app_id, user_id);
}
