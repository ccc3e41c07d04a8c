//! `GET /apps/{id}/usage` (PROTOCOL.md 10.11, a herald extension): the app's messages today
//! (UTC), its quota, its connections now and at peak today, and the last 24 hours' messages.
//! Cluster-wide in a cluster (read from Redis; 503 when Redis cannot be read).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::Response;

use super::auth::authenticate;
use super::error::{json_ok, ApiError};
use crate::server::ServerState;

pub(crate) async fn show(
    State(state): State<Arc<ServerState>>,
    Path(app_id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let authed = authenticate(&state, Some(&app_id), req).await?;
    let ns = state.hub.namespace(&authed.app.id);
    let report = state
        .usage
        .report(&authed.app, &ns)
        .await
        .map_err(|e| ApiError::Unavailable(format!("Usage cannot be read from the cluster: {e}")))?;
    let body = serde_json::to_value(&report).map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(json_ok(&body))
}
