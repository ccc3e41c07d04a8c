//! Who may use the console: HTTP Basic or the login form, sessions, CSRF, the login rate limit.
//!
//! - Credentials: `Authorization: Basic` on any request, or a session cookie
//!   (`herald_console`, 32 random bytes in hex, `HttpOnly; SameSite=Strict; Path=/console`,
//!   `Secure` under TLS) set by `POST /console/login`. Both compare the configured username and
//!   password in constant time (HMACs of both sides under the process key).
//! - Sessions live in memory: at most [`super::MAX_SESSIONS`] (the oldest evicted), each for
//!   [`SESSION_TTL`]; `POST /console/logout` ends one. A restart logs everyone out.
//! - A request without valid credentials gets 401 and the login page (which posts back with
//!   `next` = the path asked for, so a shared debug link opens on its log after the login); it
//!   never carries app data. Requests other than a browser's page navigation also get
//!   `WWW-Authenticate: Basic realm="herald console"` (curl, scripts). A navigation
//!   (`Sec-Fetch-Mode: navigate`) does not: browsers answer that challenge with their own
//!   credentials dialog, which hides the form and fails a headless browser's navigation.
//! - CSRF: every POST but the login needs `X-CSRF-Token` equal to the session's token (Basic:
//!   the HMAC of the username under the process key), and, when the browser sends them, a
//!   same-origin `Origin` and `Sec-Fetch-Site: same-origin`; else 403. Pages carry the token in
//!   `<meta name="csrf-token">`.
//! - [`LOGIN_FAILURES`] failed logins (form or Basic) per minute and client address; beyond
//!   them 429 until the minute is over.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use herald_protocol::auth::hmac_sha256_hex;
use parking_lot::Mutex;
use subtle::ConstantTimeEq;

use super::{routes, Console, MAX_SESSIONS};
use crate::server::ServerState;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "herald_console";
/// How long a session lasts after its login.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Failed logins allowed per client address and [`LOGIN_WINDOW`].
pub(crate) const LOGIN_FAILURES: u32 = 10;
const LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// Client addresses the login limiter tracks at once (the oldest window is forgotten beyond).
const LOGIN_TRACKED: usize = 4096;

/// An authenticated request's CSRF token, handed to the handlers in the request extensions.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub csrf: String,
}

/// One logged-in browser.
struct Session {
    csrf: String,
    created: Instant,
}

/// The sessions of the form login. A parking_lot mutex held for map operations only.
#[derive(Default)]
pub(crate) struct Sessions(Mutex<HashMap<String, Session>>);

impl Sessions {
    /// A new session; returns its cookie value. Evicts expired sessions, then the oldest one
    /// while [`MAX_SESSIONS`] are held.
    pub(crate) fn create(&self) -> String {
        let id = hex_random();
        let now = Instant::now();
        let mut map = self.0.lock();
        map.retain(|_, s| now.duration_since(s.created) < SESSION_TTL);
        while map.len() >= MAX_SESSIONS {
            let Some(oldest) = map.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| k.clone()) else { break };
            map.remove(&oldest);
        }
        map.insert(id.clone(), Session { csrf: hex_random(), created: now });
        id
    }

    /// The CSRF token of the live session `id`. (A map lookup by a 256-bit random key: its
    /// timing tells nothing useful.)
    fn csrf(&self, id: &str) -> Option<String> {
        let mut map = self.0.lock();
        let expired = map.get(id).is_some_and(|s| s.created.elapsed() >= SESSION_TTL);
        if expired {
            map.remove(id);
            return None;
        }
        map.get(id).map(|s| s.csrf.clone())
    }

    pub(crate) fn remove(&self, id: &str) {
        self.0.lock().remove(id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().len()
    }
}

/// Failed logins per client address in the current minute. A parking_lot mutex held for one
/// map operation (a prune of at most [`LOGIN_TRACKED`] entries when full).
#[derive(Default)]
pub(crate) struct LoginLimiter(Mutex<HashMap<IpAddr, (Instant, u32)>>);

impl LoginLimiter {
    /// `Err(seconds to wait)` while `ip` has used up its failures of this minute.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let map = self.0.lock();
        match map.get(&ip) {
            Some((start, n)) if *n >= LOGIN_FAILURES && start.elapsed() < LOGIN_WINDOW => {
                Err((LOGIN_WINDOW - start.elapsed()).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Counts one failed login of `ip`.
    pub(crate) fn failed(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut map = self.0.lock();
        if map.len() >= LOGIN_TRACKED && !map.contains_key(&ip) {
            map.retain(|_, (start, _)| now.duration_since(*start) < LOGIN_WINDOW);
            if map.len() >= LOGIN_TRACKED {
                if let Some(oldest) = map.iter().min_by_key(|(_, (s, _))| *s).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        let entry = map.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= LOGIN_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}

fn hex_random() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `given` equals `expected`, in time independent of where they differ and of their
/// lengths (both are HMACed under the process key first).
fn same_secret(console: &Console, given: &str, expected: &str) -> bool {
    let a = hmac_sha256_hex(&console.csrf_key, given.as_bytes());
    let b = hmac_sha256_hex(&console.csrf_key, expected.as_bytes());
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Whether the username and password are the configured ones (both always compared).
pub(crate) fn credentials_match(console: &Console, username: &str, password: &str) -> bool {
    let user = same_secret(console, username, &console.config.username);
    let pass = same_secret(console, password, &console.config.password);
    user & pass
}

/// The CSRF token of Basic-authenticated requests.
fn basic_csrf(console: &Console) -> String {
    hmac_sha256_hex(&console.csrf_key, format!("csrf:{}", console.config.username).as_bytes())
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The `(username, password)` of an `Authorization: Basic` header.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// The client address the login limit applies to (`trusted_proxies` as for WebSockets).
pub(crate) fn client_ip(state: &ServerState, req: &Request) -> IpAddr {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |ConnectInfo(p)| *p);
    crate::ws::client_ip(req.headers(), peer, &state.config.trusted_proxies)
}

/// Whether the browser says the request comes from a page of this origin: `Origin` (when
/// sent) must name the `Host` the request was sent to, and `Sec-Fetch-Site` (when sent) must
/// be `same-origin`.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let authority = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
        match (authority, host) {
            (Some(a), Some(h)) if a.eq_ignore_ascii_case(h) => {}
            _ => return false,
        }
    }
    match headers.get("sec-fetch-site").map(|v| v.to_str().unwrap_or("")) {
        None => true,
        Some(site) => site.eq_ignore_ascii_case("same-origin"),
    }
}

/// The console of a server whose console routes are mounted (they are only when it is on).
pub(crate) fn console(state: &ServerState) -> &Arc<Console> {
    state.console.as_ref().expect("console routes are mounted only with [console] enabled")
}

/// The middleware of every `/console` route but the login page and the assets: 401 without
/// credentials, 429 over the login limit, 403 for a POST failing the CSRF checks.
pub(crate) async fn require(State(state): State<Arc<ServerState>>, mut req: Request, next: Next) -> Response {
    let console = console(&state);
    let session = cookie(req.headers(), COOKIE).and_then(|id| console.sessions.csrf(id));
    let identity = match (session, basic(req.headers())) {
        (Some(csrf), _) => Identity { csrf },
        (None, Some((user, pass))) => {
            let ip = client_ip(&state, &req);
            if let Err(wait) = console.logins.check(ip) {
                return too_many(wait);
            }
            if !credentials_match(console, &user, &pass) {
                console.logins.failed(ip);
                return unauthorized(req.uri().path(), None, challenge(req.headers()));
            }
            Identity { csrf: basic_csrf(console) }
        }
        (None, None) => return unauthorized(req.uri().path(), None, challenge(req.headers())),
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let token = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
        if !same_secret(console, token, &identity.csrf) || !same_origin(req.headers()) {
            return forbidden();
        }
    }
    req.extensions_mut().insert(identity);
    next.run(req).await
}

/// 401 with the login page; `error` is shown above the form; with `challenge`, also the Basic
/// challenge.
pub(crate) fn unauthorized(path: &str, error: Option<&str>, challenge: bool) -> Response {
    let mut res = (StatusCode::UNAUTHORIZED, routes::login_page(path, error)).into_response();
    if challenge {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"herald console\""));
    }
    res
}

/// Whether a 401 to this request carries the Basic challenge: not for a browser's page
/// navigation, which shows the login form instead (see the module doc).
pub(crate) fn challenge(headers: &HeaderMap) -> bool {
    headers.get("sec-fetch-mode").and_then(|v| v.to_str().ok()) != Some("navigate")
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"error":"Missing or wrong X-CSRF-Token, or a cross-origin request"}"#,
    )
        .into_response()
}

pub(crate) fn too_many(wait: u64) -> Response {
    let mut res =
        (StatusCode::TOO_MANY_REQUESTS, "Too many failed logins from your address; try again later\n").into_response();
    res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
    res
}

/// The `Set-Cookie` of a new session, or (`None`) of its removal.
pub(crate) fn set_cookie(console: &Console, session: Option<&str>) -> HeaderValue {
    let secure = if console.secure_cookie { "; Secure" } else { "" };
    let value = match session {
        Some(id) => format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/console{secure}"),
        None => format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("herald_console=; Max-Age=0"))
}

/// `next` if it is a console path to go back to after the login, else `/console`.
pub(crate) fn safe_next(next: &str) -> &str {
    let ok = (next == "/console" || next.starts_with("/console/"))
        && !next.contains(['\\', '\r', '\n', '"', '<', '>'])
        && !next.contains("//")
        && !next.contains("/../");
    if ok {
        next
    } else {
        "/console"
    }
}

/// `POST /console/logout`: ends the session (if any) and clears the cookie; 303 to the login.
pub(crate) async fn logout(State(state): State<Arc<ServerState>>, req: Request<Body>) -> Response {
    let console = console(&state);
    if let Some(id) = cookie(req.headers(), COOKIE) {
        console.sessions.remove(id);
    }
    let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, "/console/login")]).into_response();
    res.headers_mut().insert(header::SET_COOKIE, set_cookie(console, None));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_bounded_and_the_oldest_goes_first() {
        let sessions = Sessions::default();
        let first = sessions.create();
        let ids: Vec<String> = (0..MAX_SESSIONS).map(|_| sessions.create()).collect();
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert!(sessions.csrf(&first).is_none(), "the oldest session was evicted");
        assert!(sessions.csrf(&ids[MAX_SESSIONS - 1]).is_some());
        sessions.remove(&ids[0]);
        assert!(sessions.csrf(&ids[0]).is_none());
    }

    #[test]
    fn the_login_limit_allows_ten_failures_a_minute_per_address() {
        let limiter = LoginLimiter::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..LOGIN_FAILURES {
            assert!(limiter.check(a).is_ok());
            limiter.failed(a);
        }
        let wait = limiter.check(a).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(limiter.check(b).is_ok(), "another address is not limited");
    }

    #[test]
    fn next_must_stay_inside_the_console() {
        assert_eq!(safe_next("/console/apps/a/debug"), "/console/apps/a/debug");
        for bad in ["https://evil.example/", "//evil.example", "/console//evil", "/metrics", "/console\\x", "/consolex"]
        {
            assert_eq!(safe_next(bad), "/console", "{bad}");
        }
    }

    #[test]
    fn cross_origin_requests_are_told_apart() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(same_origin(&headers(&[("host", "h:1")])));
        assert!(same_origin(&headers(&[("host", "h:1"), ("origin", "http://h:1")])));
        assert!(!same_origin(&headers(&[("host", "h:1"), ("origin", "http://evil:1")])));
        assert!(!same_origin(&headers(&[("host", "h:1"), ("origin", "null")])));
        assert!(!same_origin(&headers(&[("host", "h:1"), ("sec-fetch-site", "cross-site")])));
        assert!(same_origin(&headers(&[("host", "h:1"), ("sec-fetch-site", "same-origin")])));
    }

    #[test]
    fn basic_credentials_are_decoded() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic YWRtaW46cGE6c3M="));
        assert_eq!(basic(&h), Some(("admin".into(), "pa:ss".into())));
    }
}
