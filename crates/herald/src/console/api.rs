//! The console's JSON API (`/console/api/…`), read by the pages. Errors are
//! `{"error": "<message>"}` with the status the HTTP API would give.
//!
//! Numbers come from where the HTTP API gets them: channel lists and presence members from
//! `http::cluster_view` (cluster-wide in a cluster), connections and messages today from the
//! usage accounting (cluster-wide in a cluster, read from Redis, falling back to this node's
//! numbers when Redis cannot be read). An event is published by `http::events::trigger_event`,
//! the code behind `POST /apps/{id}/events`: same validation, same quota and rate checks, and
//! it counts as one API request of the app.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_core::app::App;
use herald_protocol::channel::{validate_channel_name, ChannelKind};
use serde_json::{json, Map, Value};

use super::history::INTERVAL;
use super::routes::{app_exists, read_body};
use crate::http::{admit, cluster_view, events, ApiError};
use crate::server::ServerState;

/// Channels listed at most (the first by name).
pub(crate) const MAX_CHANNELS: usize = 10_000;
/// Pending deliveries and dead letters listed at most (each).
pub(crate) const MAX_DELIVERIES: usize = 200;
/// Dead-letter ids one re-send request may name.
const MAX_RESEND_IDS: usize = 1000;

/// A JSON error answer.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({ "error": message.into() });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn api_error(e: ApiError) -> Response {
    let mut res = error(e.status(), e.to_string());
    if let ApiError::RateLimited { retry_after, .. } = e {
        res.headers_mut().insert(header::RETRY_AFTER, retry_after.into());
    }
    res
}

fn store_error(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console: webhook store request failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn ok(value: Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

/// The app `app_id`, or a 404 answer.
async fn app(state: &ServerState, app_id: &str) -> Result<Arc<App>, Response> {
    if app_exists(state, app_id).await {
        if let Some(app) = state.hub.apps().by_id(app_id) {
            return Ok(app);
        }
    }
    Err(error(StatusCode::NOT_FOUND, format!("Unknown app: {app_id}")))
}

/// `GET /console/api/apps`: every app served, by id.
pub(crate) async fn apps(State(state): State<Arc<ServerState>>) -> Response {
    let hub = &state.hub;
    let mut ids = hub.apps().ids();
    ids.sort();
    let namespaces: HashMap<String, _> = hub.namespaces().into_iter().collect();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(app) = hub.apps().by_id(&id) else { continue };
        let ns = namespaces.get(&id).map(|ns| &**ns);
        let mut connections = ns.map_or(0, |ns| ns.connection_count() as u64);
        let mut messages = state.usage.messages_today(&id, ns);
        let mut channels = ns.map_or(0, |ns| ns.occupied_channels());
        if state.cluster.is_some() {
            if let Ok(report) = state.usage.report(&app, &hub.namespace(&id)).await {
                (connections, messages) = (report.connections, report.messages);
            }
            if let Ok(list) = cluster_view::occupied(hub, &id, "").await {
                channels = list.len() as u64;
            }
        }
        let mut entry = json!({
            "id": id,
            "enabled": app.limits.enabled,
            "connections": connections,
            "channels": channels,
            "messages_today": messages,
        });
        if let Some(max) = app.limits.max_messages_per_day {
            entry["max_messages_per_day"] = max.into();
        }
        if let Some(max) = app.limits.max_connections {
            entry["max_connections"] = max.into();
        }
        out.push(entry);
    }
    ok(Value::Array(out))
}

/// `GET /console/api/apps/{id}/channels`: occupied channels by name (at most
/// [`MAX_CHANNELS`]), `user_count` for presence channels.
pub(crate) async fn channels(State(state): State<Arc<ServerState>>, Path(app_id): Path<String>) -> Response {
    let app = match app(&state, &app_id).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let list = match cluster_view::occupied(&state.hub, &app.id, "").await {
        Ok(l) => l,
        Err(e) => return api_error(e),
    };
    let out: Vec<Value> = list
        .into_iter()
        .take(MAX_CHANNELS)
        .map(|(name, counts)| {
            let mut entry = json!({ "name": name, "subscription_count": counts.subscription_count });
            if ChannelKind::of(&name).is_presence() {
                entry["user_count"] = counts.user_count.into();
            }
            entry
        })
        .collect();
    ok(Value::Array(out))
}

/// `GET /console/api/apps/{id}/channels/{channel}/members`: the user ids of a presence
/// channel (400 for another kind).
pub(crate) async fn members(
    State(state): State<Arc<ServerState>>,
    Path((app_id, channel)): Path<(String, String)>,
) -> Response {
    let app = match app(&state, &app_id).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let kind = match validate_channel_name(&channel, app.limits.max_channel_name_length) {
        Ok(k) => k,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("Invalid channel name {channel:?}: {e}")),
    };
    if !kind.is_presence() {
        return error(StatusCode::BAD_REQUEST, "Members can only be listed for presence channels");
    }
    match cluster_view::user_ids(&state.hub, &app.id, &channel).await {
        Ok(ids) => ok(Value::Array(ids.into_iter().map(|id| json!({ "id": id })).collect())),
        Err(e) => api_error(e),
    }
}

/// `POST /console/api/apps/{id}/events`, body `{channel | channels, event, data, socket_id?}`:
/// published like `POST /apps/{id}/events` with `name` = `event`.
pub(crate) async fn trigger(
    State(state): State<Arc<ServerState>>,
    Path(app_id): Path<String>,
    req: Request,
) -> Response {
    let app = match app(&state, &app_id).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    // As an API request: counted once the app is known, whatever the answer.
    state.usage.count_request(&app.id);
    let body = match read_body(&state, req.into_body()).await {
        Ok(b) => b,
        Err(res) => return res,
    };
    let mut fields: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return error(StatusCode::BAD_REQUEST, "Invalid JSON body: expected an object"),
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("Invalid JSON body: {e}")),
    };
    if fields.contains_key("name") {
        return error(StatusCode::BAD_REQUEST, "The event name goes in `event`");
    }
    if let Some(event) = fields.remove("event") {
        fields.insert("name".into(), event);
    }
    let body = Value::Object(fields).to_string();
    if let Err(e) = admit(&state, &app) {
        return api_error(e);
    }
    match events::trigger_event(&state, &app, body.as_bytes()).await {
        Ok(res) => res,
        Err(e) => api_error(e),
    }
}

/// The `events` of a webhook body (null if it has none).
fn events_of(body: &str) -> Value {
    serde_json::from_str::<Value>(body).ok().and_then(|b| b.get("events").cloned()).unwrap_or(Value::Null)
}

/// `GET /console/api/apps/{id}/webhooks`: pending deliveries and dead letters (at most
/// [`MAX_DELIVERIES`] of each, oldest first) and how many there are in all.
pub(crate) async fn webhooks(State(state): State<Arc<ServerState>>, Path(app_id): Path<String>) -> Response {
    let app = match app(&state, &app_id).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let (pending, pending_total) = match state.webhooks.pending(&app.id, MAX_DELIVERIES).await {
        Ok(p) => p,
        Err(e) => return store_error(e),
    };
    let dead = match state.webhooks.dead_letters(&app.id, None, MAX_DELIVERIES).await {
        Ok(p) => p.letters,
        Err(e) => return store_error(e),
    };
    let pending: Vec<Value> = pending
        .iter()
        .map(|p| {
            let mut entry = json!({ "id": p.id, "url": p.url, "events": events_of(&p.body), "attempts": p.attempts });
            if let Some(next) = p.next_attempt_ms {
                entry["next_attempt_ms"] = next.into();
            }
            entry
        })
        .collect();
    let dead: Vec<Value> = dead
        .iter()
        .map(|d| {
            json!({
                "id": d.id, "url": d.url, "events": events_of(&d.body), "attempts": d.attempts,
                "error": d.last_error, "dead_at_ms": d.failed_ms,
            })
        })
        .collect();
    let (_, dead_total) = state.webhooks.counts(&app.id);
    ok(json!({
        "pending": pending,
        "dead_letters": dead,
        "pending_total": pending_total,
        "dead_letters_total": dead_total,
    }))
}

/// `POST /console/api/apps/{id}/webhooks/resend`, body `{ids: [..]}` or `{all: true}`: the
/// dead letters go back to the end of their target's queue. → `{resent: n}`.
pub(crate) async fn resend(
    State(state): State<Arc<ServerState>>,
    Path(app_id): Path<String>,
    req: Request,
) -> Response {
    let app = match app(&state, &app_id).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let body = match read_body(&state, req.into_body()).await {
        Ok(b) => b,
        Err(res) => return res,
    };
    let usage = "Expected {\"ids\": [dead-letter ids]} or {\"all\": true}";
    let ids: Option<Vec<u64>> = match serde_json::from_slice::<Value>(&body) {
        Ok(v) if v.get("all") == Some(&Value::Bool(true)) => None,
        Ok(v) => match v.get("ids").map(|ids| serde_json::from_value::<Vec<u64>>(ids.clone())) {
            Some(Ok(ids)) if ids.len() <= MAX_RESEND_IDS => Some(ids),
            Some(Ok(_)) => return error(StatusCode::BAD_REQUEST, format!("At most {MAX_RESEND_IDS} ids at once")),
            _ => return error(StatusCode::BAD_REQUEST, usage),
        },
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("Invalid JSON body: {e}")),
    };
    let mut resent = 0;
    let targets: Vec<Option<u64>> = match ids {
        None => vec![None],
        Some(ids) => ids.into_iter().map(Some).collect(),
    };
    for id in targets {
        match state.webhooks.resend(&app.id, id).await {
            Ok(n) => resent += n,
            Err(e) => return store_error(e),
        }
    }
    ok(json!({ "resent": resent }))
}

/// `GET /console/api/apps/{id}/history`: the last hour, one sample every 10 s.
pub(crate) async fn history(State(state): State<Arc<ServerState>>, Path(app_id): Path<String>) -> Response {
    let app = match app(&state, &app_id).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let console = super::auth::console(&state);
    ok(json!({ "interval_s": INTERVAL.as_secs(), "samples": console.history.samples(&app.id) }))
}
