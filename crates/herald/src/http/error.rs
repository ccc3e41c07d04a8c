//! API errors → HTTP status + plain-text body (PROTOCOL.md 10.1: hosted answers errors in
//! plain text, SDKs show the body verbatim and branch only on the status).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_protocol::api_auth::ApiAuthError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// 400: malformed body, invalid names, too many channels, bad socket_id, bad `info`...
    #[error("{0}")]
    BadRequest(String),
    /// 401: every request-authentication failure.
    #[error("{0}")]
    Unauthorized(#[from] ApiAuthError),
    /// 403: app disabled, or over its daily message quota (publishes).
    #[error("{0}")]
    Forbidden(String),
    /// 404: unknown app or path.
    #[error("{0}")]
    NotFound(String),
    /// 408: the request body did not arrive within `http_body_read_timeout`; the connection
    /// is closed after the answer (the rest of the body is never read).
    #[error("{0}")]
    Timeout(String),
    /// 429: over `max_api_requests_per_second`; `Retry-After` says when to try again.
    #[error("{message}")]
    RateLimited { message: String, retry_after: u64 },
    /// 413: event data or request body over the limit.
    #[error("{0}")]
    TooLarge(String),
    /// 503: cluster state cannot be read right now (Redis unreachable).
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    pub(crate) fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::BadRequest(msg.into())
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = format!("{self}\n");
        let mut response = (self.status(), [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
        if matches!(self, ApiError::Timeout(_)) {
            response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        }
        if let ApiError::RateLimited { retry_after, .. } = self {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
        }
        response
    }
}

/// A 200 response with a JSON body (SDKs require exactly 200 and a JSON body, never empty).
pub(crate) fn json_ok(value: &serde_json::Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
