//! Dead-letter admin endpoints, signed like the rest of the HTTP API (PROTOCOL.md 10.2):
//!
//! * `GET  /apps/{id}/webhooks/dead_letters?limit=&after=` → one page of dead letters, oldest
//!   first: `{"dead_letters": [...], "next": <id or null>}`; `limit` defaults to
//!   [`DEFAULT_PAGE`] and may be at most [`MAX_PAGE`]; pass `next` as `after` for the next page;
//! * `POST /apps/{id}/webhooks/dead_letters/{dl_id}/resend` → `{"resent": 1}` (404 if unknown);
//! * `POST /apps/{id}/webhooks/dead_letters/resend_all` → `{"resent": n}`.
//!
//! Re-sent letters go to the end of their target's queue with a fresh `time_ms`.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::store::{DeadLetter, StoreError};
use crate::http::{authenticate, json_ok, ApiError};
use crate::server::ServerState;

/// Dead letters per page when `limit` is not given.
pub(crate) const DEFAULT_PAGE: usize = 100;
/// The largest `limit` accepted.
pub(crate) const MAX_PAGE: usize = 1000;

pub(crate) async fn list(State(state): State<Arc<ServerState>>, Path(app_id): Path<String>, req: Request) -> Response {
    let authed = match authenticate(&state, Some(&app_id), req).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let limit = match authed.params.get("limit") {
        None => DEFAULT_PAGE,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => return ApiError::bad_request(format!("limit must be 1 to {MAX_PAGE}, got {v:?}")).into_response(),
        },
    };
    let after = match authed.params.get("after") {
        None => None,
        Some(v) => match v.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return ApiError::bad_request(format!("after must be a dead-letter id, got {v:?}")).into_response()
            }
        },
    };
    let page = match state.webhooks.dead_letters(&authed.app.id, after, limit).await {
        Ok(p) => p,
        Err(e) => return store_error(&e),
    };
    json_ok(&json!({
        "dead_letters": page.letters.iter().map(letter_json).collect::<Vec<Value>>(),
        "next": page.next,
    }))
}

pub(crate) async fn resend_one(
    State(state): State<Arc<ServerState>>,
    Path((app_id, dl_id)): Path<(String, String)>,
    req: Request,
) -> Response {
    let authed = match authenticate(&state, Some(&app_id), req).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let not_found = || ApiError::NotFound(format!("Unknown dead letter: {dl_id}")).into_response();
    let Ok(id) = dl_id.parse::<u64>() else { return not_found() };
    match state.webhooks.resend(&authed.app.id, Some(id)).await {
        Ok(0) => not_found(),
        Ok(n) => json_ok(&json!({ "resent": n })),
        Err(e) => store_error(&e),
    }
}

pub(crate) async fn resend_all(
    State(state): State<Arc<ServerState>>,
    Path(app_id): Path<String>,
    req: Request,
) -> Response {
    let authed = match authenticate(&state, Some(&app_id), req).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let n = match state.webhooks.resend(&authed.app.id, None).await {
        Ok(n) => n,
        Err(e) => return store_error(&e),
    };
    json_ok(&json!({ "resent": n }))
}

/// A dead letter as the API shows it: the body's events decoded for reading.
fn letter_json(d: &DeadLetter) -> Value {
    let events = serde_json::from_str::<Value>(&d.body).ok().and_then(|b| b.get("events").cloned());
    json!({
        "id": d.id,
        "url": d.url,
        "created_ms": d.created_ms,
        "failed_ms": d.failed_ms,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "events": events.unwrap_or(Value::Null),
    })
}

fn store_error(e: &StoreError) -> Response {
    tracing::error!(error = %e, "dead-letter request failed");
    (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{e}\n"))
        .into_response()
}
