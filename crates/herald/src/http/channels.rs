//! Channel queries: `GET /channels`, `GET /channels/{name}`, `GET /channels/{name}/users`
//! (PROTOCOL.md 10.5–10.7).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::Response;
use herald_protocol::channel::{validate_channel_name, ChannelKind};
use serde_json::{json, Map, Value};

use super::auth::authenticate;
use super::cluster_view;
use super::error::{json_ok, ApiError};
use super::info::Info;
use crate::server::ServerState;

pub(crate) async fn list(
    State(state): State<Arc<ServerState>>,
    Path(app_id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let authed = authenticate(&state, Some(&app_id), req).await?;
    let prefix = authed.params.get("filter_by_prefix").unwrap_or("").to_owned();
    let info = Info::parse(authed.params.get("info"), &["user_count", "subscription_count"])?;
    if info.user_count && !prefix.starts_with("presence-") {
        return Err(ApiError::bad_request("info=user_count requires filter_by_prefix to start with presence-"));
    }
    let mut channels = Map::new();
    for (name, counts) in cluster_view::occupied(&state.hub, &authed.app.id, &prefix).await? {
        let attrs = info.attributes(ChannelKind::of(&name), counts);
        channels.insert(name, Value::Object(attrs));
    }
    Ok(json_ok(&json!({ "channels": channels })))
}

pub(crate) async fn show(
    State(state): State<Arc<ServerState>>,
    Path((app_id, channel)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let authed = authenticate(&state, Some(&app_id), req).await?;
    let kind = validate_channel_name(&channel, authed.app.limits.max_channel_name_length)
        .map_err(|e| ApiError::bad_request(format!("Invalid channel name {channel:?}: {e}")))?;
    let info = Info::parse(authed.params.get("info"), &["user_count", "subscription_count", "cache"])?;
    if info.user_count && !kind.is_presence() {
        return Err(ApiError::bad_request("info=user_count is only available for presence channels"));
    }
    if info.cache && !kind.is_cache() {
        return Err(ApiError::bad_request("info=cache is only available for cache channels"));
    }
    let ns = state.hub.namespace(&authed.app.id);
    let counts = cluster_view::counts(&state.hub, &authed.app.id, &channel).await?;
    let mut body = Map::new();
    body.insert("occupied".into(), (counts.subscription_count > 0).into());
    if info.user_count {
        body.insert("user_count".into(), counts.user_count.into());
    }
    if info.subscription_count {
        body.insert("subscription_count".into(), counts.subscription_count.into());
    }
    if info.cache {
        let cache = match ns.cached(&channel) {
            Some((c, ttl)) => json!({ "event": &*c.event, "data": &*c.data, "ttl": ttl }),
            None => Value::Null,
        };
        body.insert("cache".into(), cache);
    }
    Ok(json_ok(&Value::Object(body)))
}

pub(crate) async fn users(
    State(state): State<Arc<ServerState>>,
    Path((app_id, channel)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let authed = authenticate(&state, Some(&app_id), req).await?;
    let kind = validate_channel_name(&channel, authed.app.limits.max_channel_name_length)
        .map_err(|e| ApiError::bad_request(format!("Invalid channel name {channel:?}: {e}")))?;
    if !kind.is_presence() {
        return Err(ApiError::bad_request("Users can only be listed for presence channels"));
    }
    let users: Vec<Value> = cluster_view::user_ids(&state.hub, &authed.app.id, &channel)
        .await?
        .into_iter()
        .map(|id| json!({ "id": id }))
        .collect();
    Ok(json_ok(&json!({ "users": users })))
}
