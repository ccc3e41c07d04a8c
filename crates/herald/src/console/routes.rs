//! The console's router (mounted on the main listener only when `[console]` enables it), its
//! pages and its embedded assets.
//!
//! Every page is one HTML shell (`assets/index.html`) with `{{csrf}}`, `{{app_id}}` and
//! `{{page}}` replaced (HTML-escaped); the front end (`assets/console.js`, `assets/console.css`,
//! embedded, no build step, nothing fetched from elsewhere) draws the page from the JSON API.
//! The login page is drawn here. Every console response says `Cache-Control: no-store` (pages
//! carry the CSRF token; the assets `no-cache`), may not be framed, and allows only this
//! origin's scripts, styles and connections (`Content-Security-Policy`).

use std::sync::Arc;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::auth::{self, Identity};
use super::{api, stream, MAX_BODY};
use crate::apps::By;
use crate::server::ServerState;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// The pages of one app, as `/console/apps/{app_id}/{page}` names them.
const APP_PAGES: [&str; 5] = ["debug", "channels", "events", "webhooks", "charts"];

/// The `/console` routes.
pub(crate) fn router(state: Arc<ServerState>) -> Router<Arc<ServerState>> {
    let protected = Router::new()
        .route("/console", get(apps_page))
        .route("/console/", get(apps_page))
        .route("/console/apps/{app_id}/stream", get(stream::open))
        .route("/console/apps/{app_id}/{page}", get(app_page))
        .route("/console/logout", post(auth::logout))
        .route("/console/api/apps", get(api::apps))
        .route("/console/api/apps/{app_id}/channels", get(api::channels))
        .route("/console/api/apps/{app_id}/channels/{channel}/members", get(api::members))
        .route("/console/api/apps/{app_id}/events", post(api::trigger))
        .route("/console/api/apps/{app_id}/webhooks", get(api::webhooks))
        .route("/console/api/apps/{app_id}/webhooks/resend", post(api::resend))
        .route("/console/api/apps/{app_id}/history", get(api::history))
        .route("/console/{*rest}", get(not_found).post(not_found))
        .layer(from_fn_with_state(state, auth::require));
    Router::new()
        .route("/console/login", get(login_form).post(login))
        .route("/console/assets/console.js", get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }))
        .route("/console/assets/console.css", get(|| async { asset(STYLE, "text/css; charset=utf-8") }))
        .merge(protected)
        .layer(from_fn(headers))
}

/// The headers of every console response (module doc).
async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Not `no-referrer`: under it browsers send `Origin: null` with a page's POSTs (the login
    // form, the console's fetches), which the same-origin check refuses.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    res
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The shell with its placeholders filled in.
fn shell(csrf: &str, app_id: &str, page: &str) -> Response {
    let html =
        INDEX.replace("{{csrf}}", &escape(csrf)).replace("{{app_id}}", &escape(app_id)).replace("{{page}}", page);
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

async fn apps_page(Extension(id): Extension<Identity>) -> Response {
    shell(&id.csrf, "", "apps")
}

async fn app_page(
    State(state): State<Arc<ServerState>>,
    Extension(id): Extension<Identity>,
    Path((app_id, page)): Path<(String, String)>,
) -> Response {
    let Some(page) = APP_PAGES.iter().find(|p| **p == page) else { return not_found().await };
    if !app_exists(&state, &app_id).await {
        return not_found().await;
    }
    shell(&id.csrf, &app_id, page)
}

/// Whether `app_id` is an app herald serves (looked up in the app store if need be).
pub(crate) async fn app_exists(state: &ServerState, app_id: &str) -> bool {
    state.resolve_app(By::Id, app_id).await;
    state.hub.apps().by_id(app_id).is_some()
}

async fn not_found() -> Response {
    let html = "<!doctype html><meta charset=\"utf-8\"><title>Not found · herald console</title>\
                <p>Not found. <a href=\"/console\">Back to the apps</a></p>\n";
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// The login page: a form posting `username`, `password` and `next` to `/console/login`.
pub(crate) fn login_page(next: &str, error: Option<&str>) -> Response {
    let error =
        error.map(|e| format!("<p class=\"login-error\" role=\"alert\">{}</p>\n", escape(e))).unwrap_or_default();
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Sign in · herald console</title>\n<link rel=\"stylesheet\" href=\"/console/assets/console.css\">\n\
         </head>\n<body class=\"login\">\n<main>\n<h1>herald console</h1>\n{error}\
         <form method=\"post\" action=\"/console/login\">\n\
         <input type=\"hidden\" name=\"next\" value=\"{next}\">\n\
         <label for=\"username\">Username</label>\n\
         <input id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus>\n\
         <label for=\"password\">Password</label>\n\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\n\
         <button type=\"submit\">Sign in</button>\n</form>\n</main>\n</body>\n</html>\n",
        next = escape(auth::safe_next(next)),
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

async fn login_form(req: Request) -> Response {
    let next = req.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "next").map(|(_, v)| v.into_owned())
    });
    login_page(next.as_deref().unwrap_or("/console"), None)
}

/// `POST /console/login` (form-urlencoded `username`, `password`, `next`): 303 to `next` with
/// the session cookie, or 401 with the form and an error; 429 over the login limit.
async fn login(State(state): State<Arc<ServerState>>, req: Request) -> Response {
    let console = auth::console(&state);
    let ip = auth::client_ip(&state, &req);
    if let Err(wait) = console.logins.check(ip) {
        return auth::too_many(wait);
    }
    if !auth::same_origin(req.headers()) {
        return (StatusCode::FORBIDDEN, "Cross-origin login refused\n").into_response();
    }
    let body = match read_body(&state, req.into_body()).await {
        Ok(b) => b,
        Err(res) => return res,
    };
    let (mut user, mut pass, mut next) = (String::new(), String::new(), String::from("/console"));
    for (k, v) in url::form_urlencoded::parse(&body) {
        match &*k {
            "username" => user = v.into_owned(),
            "password" => pass = v.into_owned(),
            "next" => next = v.into_owned(),
            _ => {}
        }
    }
    if !auth::credentials_match(console, &user, &pass) {
        console.logins.failed(ip);
        // The form failed, not Basic credentials: no challenge (no browser dialog on top of it).
        return auth::unauthorized(&next, Some("Wrong username or password."), false);
    }
    let session = console.sessions.create();
    let location = HeaderValue::from_str(auth::safe_next(&next)).unwrap_or(HeaderValue::from_static("/console"));
    let mut res = StatusCode::SEE_OTHER.into_response();
    res.headers_mut().insert(header::LOCATION, location);
    res.headers_mut().insert(header::SET_COOKIE, auth::set_cookie(console, Some(&session)));
    res
}

/// A console request body: at most [`MAX_BODY`] bytes (else 413), in within
/// `http_body_read_timeout` (else 408).
pub(crate) async fn read_body(state: &ServerState, body: Body) -> Result<Bytes, Response> {
    let deadline = std::time::Duration::from_secs(state.config.http_body_read_timeout);
    match tokio::time::timeout(deadline, to_bytes(body, MAX_BODY)).await {
        Err(_) => {
            Err((StatusCode::REQUEST_TIMEOUT, [(header::CONNECTION, "close")], "Request body too slow\n")
                .into_response())
        }
        Ok(Err(_)) => {
            Err(api::error(StatusCode::PAYLOAD_TOO_LARGE, format!("Request body larger than {MAX_BODY} bytes")))
        }
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_escapes_what_it_fills_in() {
        assert_eq!(escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert!(INDEX.contains("{{csrf}}") && INDEX.contains("{{app_id}}") && INDEX.contains("{{page}}"));
    }
}
