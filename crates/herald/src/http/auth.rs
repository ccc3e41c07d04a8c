//! Request authentication for the HTTP API (PROTOCOL.md 10.2).
//!
//! Order: unknown app → 404; body not in within `http_body_read_timeout` → 408 (and the
//! connection is closed); body over `max_http_body_kb` → 413; every signature check → 401
//! (done before the body is parsed); app disabled → 403; over `max_api_requests_per_second`
//! → 429. Every request whose app is known counts as one message of the app. The configured path prefix is not part
//! of the signed path (SDKs such as PHP's `path` option do not sign it); the router strips it.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{to_bytes, Bytes};
use axum::extract::Request;
use herald_core::app::App;
use herald_protocol::api_auth::{verify_api_request, ApiRequest, QueryParams};

use super::error::ApiError;
use crate::apps::By;
use crate::server::ServerState;
use crate::usage::Refused;

/// A request that passed authentication.
pub(crate) struct Authed {
    pub app: Arc<App>,
    pub params: QueryParams,
    pub body: Bytes,
}

/// Authenticates a request for `app_id` (`None` for the Python alias route, where the app is
/// the one owning `auth_key`).
pub(crate) async fn authenticate(state: &ServerState, app_id: Option<&str>, req: Request) -> Result<Authed, ApiError> {
    // Apps the directory does not hold are looked up in the app store first (no-op for apps
    // from the config).
    if let Some(id) = app_id {
        state.resolve_app(By::Id, id).await;
    }
    let path_app = match app_id {
        Some(id) => Some(state.hub.apps().by_id(id).ok_or_else(|| ApiError::NotFound(format!("Unknown app: {id}")))?),
        None => None,
    };
    // The app is known: the request counts as one of its messages, whatever its answer.
    if let Some(app) = &path_app {
        state.usage.count_request(&app.id);
    }
    let method = req.method().as_str().to_owned();
    // Under a `path_prefix` the router is nested, and a nested router sees the path with the
    // prefix already removed: this is the unprefixed path the SDKs sign.
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let limit = state.config.max_http_body_kb * 1024;
    let deadline = std::time::Duration::from_secs(state.config.http_body_read_timeout);
    let body = tokio::time::timeout(deadline, to_bytes(req.into_body(), limit))
        .await
        .map_err(|_| ApiError::Timeout(format!("Request body not received within {} s", deadline.as_secs())))?
        .map_err(|_| ApiError::TooLarge(format!("Request body larger than {limit} bytes")))?;

    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let apps = state.hub.apps();
    let owned_lookup = |key: &str| apps.by_key(key);
    // The verifier borrows (id, secret) for the duration of the call; look the app up once.
    let key_param = QueryParams::parse(&query).get("auth_key").map(str::to_owned);
    if let (None, Some(key)) = (app_id, &key_param) {
        state.resolve_app(By::Key, key).await;
    }
    let key_app = key_param.as_deref().and_then(owned_lookup);
    let verified = verify_api_request(
        &ApiRequest { method: &method, path: &path, raw_query: &query, body: &body },
        app_id,
        now,
        state.config.api_timestamp_tolerance,
        |key| key_app.as_ref().filter(|a| a.key == key).map(|a| (a.id.as_str(), a.secret.as_bytes())),
    )?;
    let app = match path_app {
        Some(app) => app,
        None => {
            let app = key_app.ok_or(ApiError::Unauthorized(herald_protocol::api_auth::ApiAuthError::UnknownKey))?;
            state.usage.count_request(&app.id);
            app
        }
    };
    // After the signature: unsigned requests cannot use up an app's rate.
    admit(state, &app)?;
    Ok(Authed { app, params: verified.params, body })
}

/// The checks of an authenticated request of `app`: app disabled → 403, over
/// `max_api_requests_per_second` → 429. (The console's event creator applies them too.)
pub(crate) fn admit(state: &ServerState, app: &App) -> Result<(), ApiError> {
    if !app.limits.enabled {
        return Err(ApiError::Forbidden("Application is disabled".to_owned()));
    }
    if let Err(Refused::Rate { retry_after }) = state.usage.admit_request(app) {
        state.hub.metrics.quota_refusal(&app.id, "api_rate");
        let rate = app.limits.max_api_requests_per_second.unwrap_or(0);
        return Err(ApiError::RateLimited {
            message: format!("Application is over its API rate limit ({rate} requests per second)"),
            retry_after,
        });
    }
    Ok(())
}
