//! `POST /apps/{id}/events` and `POST /apps/{id}/batch_events` (PROTOCOL.md 10.3, 10.4).
//!
//! [`trigger_event`] is the one publish path of a single event, shared with the console's event
//! creator. The whole request is validated before anything is published; then each event goes through
//! the core's one publish path ([`herald_core::publish`]), which encodes it once per target
//! channel, queues the same bytes to every subscriber and forwards them to the cluster.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::Response;
use herald_core::app::App;
use herald_core::publish::{Origin, Publication};
use herald_protocol::channel::{validate_channel_name, ChannelKind};
use herald_protocol::event::validate_event_name;
use herald_protocol::socket_id::SocketId;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::auth::authenticate;
use super::cluster_view;
use super::error::{json_ok, ApiError};
use super::info::Info;
use crate::console::tap::{Entry, EntryKind};
use crate::server::ServerState;

const TRIGGER_INFO: &[&str] = &["user_count", "subscription_count"];

#[derive(Debug, Deserialize)]
struct TriggerBody {
    name: Option<Value>,
    data: Option<Value>,
    channels: Option<Value>,
    channel: Option<Value>,
    socket_id: Option<Value>,
    info: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct BatchBody {
    batch: Option<Vec<Value>>,
}

/// One validated event, ready to publish.
pub(crate) struct Event {
    pub(crate) name: String,
    pub(crate) data: String,
    pub(crate) channels: Vec<String>,
    pub(crate) exclude: Option<SocketId>,
    pub(crate) info: Info,
}

pub(crate) async fn trigger(
    State(state): State<Arc<ServerState>>,
    Path(app_id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let authed = authenticate(&state, Some(&app_id), req).await?;
    trigger_event(&state, &authed.app, &authed.body).await
}

/// Publishes the event in `body` (a `POST /events` body) for `app`, once the request is
/// authenticated and admitted: the quota check (403), the validation of 10.3 (400/413), the
/// publish, and the answer with the `info` attributes asked for. `POST /apps/{id}/events` and
/// the console's event creator both publish through it.
pub(crate) async fn trigger_event(state: &ServerState, app: &App, body: &[u8]) -> Result<Response, ApiError> {
    check_quota(state, app).await?;
    let event = parse_trigger(app, body)?;
    publish(state, app, &event);
    if !event.info.any() {
        return Ok(json_ok(&json!({})));
    }
    let mut channels = Map::new();
    for ch in &event.channels {
        let counts = cluster_view::counts(&state.hub, &app.id, ch).await?;
        let attrs = event.info.attributes(ChannelKind::of(ch), counts);
        channels.insert(ch.clone(), Value::Object(attrs));
    }
    Ok(json_ok(&json!({ "channels": channels })))
}

pub(crate) async fn trigger_batch(
    State(state): State<Arc<ServerState>>,
    Path(app_id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let authed = authenticate(&state, Some(&app_id), req).await?;
    check_quota(&state, &authed.app).await?;
    let events = parse_batch(&authed.app, &authed.body)?;
    for event in &events {
        publish(&state, &authed.app, event);
    }
    if !events.iter().any(|e| e.info.any()) {
        return Ok(json_ok(&json!({})));
    }
    let mut batch = Vec::with_capacity(events.len());
    for e in &events {
        let ch = &e.channels[0];
        let counts =
            if e.info.any() { cluster_view::counts(&state.hub, &authed.app.id, ch).await? } else { Default::default() };
        batch.push(Value::Object(e.info.attributes(ChannelKind::of(ch), counts)));
    }
    Ok(json_ok(&json!({ "batch": batch })))
}

/// 403 once the app has used its `max_messages_per_day` today (PROTOCOL.md 10.11).
pub(crate) async fn check_quota(state: &ServerState, app: &App) -> Result<(), ApiError> {
    if !state.usage.over_quota_now(&state.hub, app, &state.hub.namespace(&app.id)).await {
        return Ok(());
    }
    state.hub.metrics.quota_refusal(&app.id, "messages");
    let limit = app.limits.max_messages_per_day.unwrap_or(0);
    Err(ApiError::Forbidden(format!(
        "Application is over its message quota ({limit} messages per day); it resets at 00:00 UTC"
    )))
}

/// The body of `POST /events`, parsed and validated (10.3).
pub(crate) fn parse_trigger(app: &App, body: &[u8]) -> Result<Event, ApiError> {
    validate(app, parse_json(body)?, false)
}

/// The body of `POST /batch_events`, parsed and validated (10.4): every event or none.
pub(super) fn parse_batch(app: &App, body: &[u8]) -> Result<Vec<Event>, ApiError> {
    let body: BatchBody = parse_json(body)?;
    let items = body.batch.ok_or_else(|| ApiError::bad_request("Missing batch"))?;
    let max = app.limits.max_event_batch_size;
    if items.is_empty() {
        return Err(ApiError::bad_request("Batch is empty"));
    }
    if items.len() > max {
        return Err(ApiError::bad_request(format!("Batch of {} events exceeds the limit of {max}", items.len())));
    }
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let body: TriggerBody =
            serde_json::from_value(item).map_err(|e| ApiError::bad_request(format!("batch[{i}]: {e}")))?;
        let event = validate(app, body, true).map_err(|e| match e {
            ApiError::BadRequest(m) => ApiError::BadRequest(format!("batch[{i}]: {m}")),
            ApiError::TooLarge(m) => ApiError::TooLarge(format!("batch[{i}]: {m}")),
            other => other,
        })?;
        events.push(event);
    }
    Ok(events)
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))
}

/// Applies every 400/413 rule of 10.3 (and 10.4 when `batch`).
fn validate(app: &App, body: TriggerBody, batch: bool) -> Result<Event, ApiError> {
    let limits = &app.limits;
    let name = match body.name {
        Some(Value::String(s)) => s,
        Some(_) => return Err(ApiError::bad_request("Event name must be a string")),
        None => return Err(ApiError::bad_request("Missing event name")),
    };
    validate_event_name(&name, limits.max_event_name_length)
        .map_err(|e| ApiError::bad_request(format!("Invalid event name: {e}")))?;
    let data = match body.data {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => return Err(ApiError::bad_request("Missing event data")),
    };
    if data.len() > limits.max_payload_bytes() {
        return Err(ApiError::TooLarge(format!(
            "Event data is {} bytes; the limit is {} bytes",
            data.len(),
            limits.max_payload_bytes()
        )));
    }
    let channels = if batch {
        if body.channels.is_some() {
            return Err(ApiError::bad_request("Batch events take a single `channel`, not `channels`"));
        }
        vec![string_field(body.channel, "channel")?.ok_or_else(|| ApiError::bad_request("Missing channel"))?]
    } else {
        match body.channels {
            Some(Value::Array(list)) => list
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(ApiError::bad_request("Channel names must be strings")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(ApiError::bad_request("`channels` must be an array of strings")),
            None => {
                vec![string_field(body.channel, "channel")?.ok_or_else(|| ApiError::bad_request("Missing channels"))?]
            }
        }
    };
    if channels.is_empty() {
        return Err(ApiError::bad_request("At least one channel is required"));
    }
    if channels.len() > limits.max_event_channels_at_once {
        return Err(ApiError::bad_request(format!(
            "{} channels exceed the limit of {} per event",
            channels.len(),
            limits.max_event_channels_at_once
        )));
    }
    for ch in &channels {
        let kind = validate_channel_name(ch, limits.max_channel_name_length)
            .map_err(|e| ApiError::bad_request(format!("Invalid channel name {ch:?}: {e}")))?;
        if kind.is_encrypted() && channels.len() > 1 {
            return Err(ApiError::bad_request("Cannot trigger to multiple channels when one of them is encrypted"));
        }
    }
    let exclude = match string_field(body.socket_id, "socket_id")? {
        Some(s) => Some(s.parse::<SocketId>().map_err(|_| ApiError::bad_request(format!("Invalid socket_id: {s}")))?),
        None => None,
    };
    let info = Info::parse(string_field(body.info, "info")?.as_deref(), TRIGGER_INFO)?;
    Ok(Event { name, data, channels, exclude, info })
}

fn string_field(v: Option<Value>, field: &str) -> Result<Option<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_request(format!("`{field}` must be a string"))),
    }
}

/// Publishes a validated event through the core's publish path and records it, once per
/// channel, as an `api_message` of the debug console. Every API publish goes through here
/// (`POST /events`, `/batch_events`, and the console's event creator).
pub(crate) fn publish(state: &ServerState, app: &App, event: &Event) {
    let hub = &state.hub;
    let publication = Publication {
        event: &event.name,
        data: &event.data,
        user_id: None,
        exclude: event.exclude,
        origin: Origin::Api { cache_ttl: hub.settings.cache_ttl },
    };
    hub.namespace(&app.id).publish(event.channels.iter().map(String::as_str), &publication, &hub.metrics);
    for channel in &event.channels {
        state.console_tap.record(&app.id, || {
            let entry = Entry::new(EntryKind::ApiMessage).channel(channel.as_str()).event(event.name.as_str());
            let entry = entry.data(event.data.as_str());
            match event.exclude {
                Some(socket) => entry.socket(socket.to_string()),
                None => entry,
            }
        });
    }
}
