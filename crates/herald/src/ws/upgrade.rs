//! HTTP → WebSocket upgrade on `{path_prefix}/app/{key}` and connection admission.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use super::client_ip::client_ip;
use super::connection;
use super::rate::Verdict;
use crate::apps::By;
use crate::serve::OverTls;
use crate::server::ServerState;

/// Answers the upgrade request (429 over the per-IP rate limit) and spawns (on the server's socket tracker) the task that admits
/// the connection or refuses it.
pub(crate) async fn ws_upgrade(
    State(state): State<Arc<ServerState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(key): Path<String>,
    req: Request,
) -> Response {
    let headers = req.headers();
    let Some(ws_key) = websocket_key(headers) else {
        return (StatusCode::BAD_REQUEST, "Expected a WebSocket upgrade request (protocol 7)\n").into_response();
    };
    if let Some(limiter) = &state.connect_limiter {
        let ip = client_ip(headers, peer, &state.config.trusted_proxies);
        if limiter.check(ip) == Verdict::Limited {
            let retry = limiter.retry_after_secs().to_string();
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry)],
                "Too many new connections from your address; retry later\n",
            )
                .into_response();
        }
    }
    let accept = derive_accept_key(ws_key.as_bytes());
    let protocol = query_param(req.uri().query().unwrap_or(""), "protocol");
    // Secure: over herald's own TLS, or a trusted proxy says the client used TLS.
    let secure =
        req.extensions().get::<OverTls>().is_some() || forwarded_as_https(headers, peer, &state.config.trusted_proxies);
    let on_upgrade = hyper::upgrade::on(req);

    let sockets = state.sockets.clone();
    sockets.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                return;
            }
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config(&state))).await;
        // A key the directory does not hold is looked up in the app store at once (no-op for
        // apps from the config), so a new app works on its first connection.
        state.resolve_app(By::Key, &key).await;
        match state.hub.connect(&key, protocol.as_deref(), secure) {
            // Its own task, sized to the connection alone (this one ends here).
            Ok(session) => connection::spawn(ws, session, state),
            Err(refusal) => {
                // `?`: the message can carry client text (the app key of the URL), escaped so it cannot forge a line.
                tracing::debug!(code = refusal.code.get(), reason = ?refusal.message, "connection refused");
                state.hub.metrics.closed_by_server(refusal.code);
                connection::refuse(ws, refusal.code, &refusal.message).await;
            }
        }
    });

    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    res
}

/// The `Sec-WebSocket-Key` of a valid RFC 6455 upgrade request.
fn websocket_key(headers: &HeaderMap) -> Option<String> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        return None;
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).and_then(|v| v.to_str().ok()) != Some("13") {
        return None;
    }
    headers.get(header::SEC_WEBSOCKET_KEY).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// First value of `name` in a raw query string (values are digits here; no decoding needed
/// beyond what a client would ever send for `protocol`).
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| v.to_owned())
    })
}

/// Per-socket WebSocket settings: small buffers (memory per idle connection matters) and the
/// inbound frame limit (`max_ws_message_kb`; larger → close 1009).
fn ws_config(state: &ServerState) -> WebSocketConfig {
    websocket_config(state.config.max_ws_message_kb)
}

/// The settings of [`ws_config`] for a `max_ws_message_kb` (also used by the `ws_frames` fuzz
/// target, so it reads frames exactly as a connection does).
pub(crate) fn websocket_config(max_ws_message_kb: usize) -> WebSocketConfig {
    let max = max_ws_message_kb * 1024;
    WebSocketConfig::default()
        // Pusher frames are small; a larger frame grows the buffer on demand. 512 B instead of
        // 4 KiB: ~3.5 KiB less per idle connection and less zero-filling per read.
        .read_buffer_size(512)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
        .accept_unmasked_frames(false)
}

/// Whether a TLS proxy in front of herald says the client connected over TLS: the peer must be
/// one of `trusted` (anyone else could send the header) and say `X-Forwarded-Proto: https`.
fn forwarded_as_https(headers: &HeaderMap, peer: SocketAddr, trusted: &[ipnet::IpNet]) -> bool {
    let ip = peer.ip().to_canonical(); // an IPv4 peer on an IPv6 socket is ::ffff:a.b.c.d
    trusted.iter().any(|net| net.contains(&ip))
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::query_param;

    #[test]
    fn protocol_param_found_among_others() {
        assert_eq!(query_param("client=js&protocol=7&version=8.4.0", "protocol").as_deref(), Some("7"));
        assert_eq!(query_param("client=js", "protocol"), None);
        assert_eq!(query_param("protocol", "protocol").as_deref(), Some(""));
    }
}
