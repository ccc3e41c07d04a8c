//! The console, black-box: herald in-process on port 0 with `[console]`, driven over HTTP like
//! a browser would (Basic, the login form and its cookie, the CSRF token of the pages), plus a
//! WebSocket client and a webhook receiver to see its effects (docs/OPERATIONS.md, "Console").
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use herald::config::console::ConsoleConfig;
use herald::config::Config;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::*;

const USER: &str = "admin";
const PASSWORD: &str = "correct horse battery";

fn console_config(mut c: Config) -> Config {
    c.console = Some(ConsoleConfig { username: USER.into(), password: PASSWORD.into() });
    c
}

/// A browser-like client: no redirects followed, cookies handled by hand.
fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(WAIT).build().unwrap()
}

fn url(server: &TestServer, path: &str) -> String {
    format!("http://{}{path}", server.addr)
}

async fn basic(server: &TestServer, method: Method, path: &str) -> reqwest::RequestBuilder {
    http().request(method, url(server, path)).basic_auth(USER, Some(PASSWORD))
}

/// The JSON body of a response.
async fn json_of(res: reqwest::Response) -> Value {
    let text = res.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("JSON body expected ({e}): {text}"))
}

/// The CSRF token a page carries in `<meta name="csrf-token" content="…">`.
fn csrf_of(html: &str) -> String {
    let after = html.split("name=\"csrf-token\" content=\"").nth(1).expect("csrf meta tag");
    after.split('"').next().unwrap().to_owned()
}

/// Logs in with the form; returns the `Cookie` header value of the session.
async fn login(server: &TestServer) -> String {
    let res = http()
        .post(url(server, "/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username={USER}&password=correct+horse+battery&next=%2Fconsole%2Fapps%2F{APP_ID}%2Fdebug"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], format!("/console/apps/{APP_ID}/debug"));
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    cookie.split(';').next().unwrap().to_owned()
}

/// GET with the session cookie.
async fn get_with(server: &TestServer, cookie: &str, path: &str) -> reqwest::Response {
    http().get(url(server, path)).header("cookie", cookie).send().await.unwrap()
}

/// POST JSON with the session cookie and extra headers.
async fn post_with(
    server: &TestServer,
    cookie: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    let res = http()
        .post(url(server, path))
        .header("cookie", cookie)
        .header("content-type", "application/json")
        .headers(h)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

#[tokio::test]
async fn every_console_path_is_404_when_the_console_is_off() {
    let server = start().await;
    for path in ["/console", "/console/login", "/console/api/apps", "/console/assets/console.js"] {
        let res = http().get(url(&server, path)).basic_auth(USER, Some(PASSWORD)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    server.server.shutdown().await;
}

#[tokio::test]
async fn without_credentials_a_401_with_a_basic_challenge_and_the_login_form_but_no_app_data() {
    let server = start_with(console_config(test_config())).await;
    for path in ["/console", "/console/api/apps", "/console/nothing-here"] {
        let res = http().get(url(&server, path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(res.headers()["www-authenticate"], "Basic realm=\"herald console\"");
        let body = res.text().await.unwrap();
        assert!(body.contains("<form method=\"post\" action=\"/console/login\""), "{body}");
        assert!(body.contains(&format!("name=\"next\" value=\"{path}\"")), "{body}");
        assert!(!body.contains(APP_ID) && !body.contains(KEY), "app data in the 401 body: {body}");
    }
    // A browser's page navigation (a shared debug link) gets the form without the challenge:
    // a challenge would make the browser show its own dialog (headless: fail the navigation).
    let debug = format!("/console/apps/{APP_ID}/debug");
    let res = http().get(url(&server, &debug)).header("sec-fetch-mode", "navigate").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().get("www-authenticate").is_none());
    let body = res.text().await.unwrap();
    assert!(body.contains(&format!("name=\"next\" value=\"{debug}\"")), "{body}");
    // The assets are public (the login page uses the style sheet) and hold no app data.
    let css = http().get(url(&server, "/console/assets/console.css")).send().await.unwrap();
    assert_eq!((css.status(), css.headers()["cache-control"].to_str().unwrap()), (StatusCode::OK, "no-cache"));
    server.server.shutdown().await;
}

#[tokio::test]
async fn wrong_credentials_are_refused_and_basic_with_the_right_ones_reads_the_apps() {
    let server = start_with(console_config(config_with_limits(|l| l.max_messages_per_day = Some(1000)))).await;
    let wrong = http().get(url(&server, "/console/api/apps")).basic_auth(USER, Some("wrong password")).send();
    assert_eq!(wrong.await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let wrong_user = http().get(url(&server, "/console/api/apps")).basic_auth("root", Some(PASSWORD)).send();
    assert_eq!(wrong_user.await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let _client = server.client().await;
    let res = basic(&server, Method::GET, "/console/api/apps").await.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let apps = json_of(res).await;
    let app = &apps[0];
    assert_eq!((app["id"].as_str(), app["enabled"].as_bool()), (Some(APP_ID), Some(true)), "{apps}");
    assert_eq!(app["connections"], 1, "{apps}");
    assert_eq!(app["channels"], 0, "{apps}");
    assert_eq!(app["max_messages_per_day"], 1000, "{apps}");
    assert!(app["messages_today"].is_u64() && app.get("max_connections").is_none(), "{apps}");
    server.server.shutdown().await;
}

#[tokio::test]
async fn the_login_form_sets_a_session_cookie_that_works_until_logout() {
    let server = start_with(console_config(test_config())).await;
    let wrong = http()
        .post(url(&server, "/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=admin&password=nope&next=%2Fconsole")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.unwrap().contains("Wrong username or password"));

    let cookie = login(&server).await;
    let page = get_with(&server, &cookie, &format!("/console/apps/{APP_ID}/debug")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("data-page=\"debug\"") && html.contains(&format!("data-app-id=\"{APP_ID}\"")), "{html}");
    assert_eq!(csrf_of(&html).len(), 64, "{html}");
    assert_eq!(get_with(&server, &cookie, "/console/api/apps").await.status(), StatusCode::OK);
    assert_eq!(get_with(&server, &cookie, "/console/apps/no-such-app/debug").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        get_with(&server, &cookie, &format!("/console/apps/{APP_ID}/nope")).await.status(),
        StatusCode::NOT_FOUND
    );

    let token = csrf_of(&html);
    let res = http()
        .post(url(&server, "/console/logout"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(res.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(get_with(&server, &cookie, "/console/api/apps").await.status(), StatusCode::UNAUTHORIZED);
    server.server.shutdown().await;
}

#[tokio::test]
async fn posts_need_the_csrf_token_and_a_same_origin() {
    let server = start_with(console_config(test_config())).await;
    let cookie = login(&server).await;
    let token = csrf_of(&get_with(&server, &cookie, "/console").await.text().await.unwrap());
    let path = format!("/console/api/apps/{APP_ID}/events");
    let body = r#"{"channel":"room","event":"e","data":"x"}"#;
    assert_eq!(post_with(&server, &cookie, &path, body, &[]).await.0, 403);
    assert_eq!(post_with(&server, &cookie, &path, body, &[("x-csrf-token", "0000")]).await.0, 403);
    let origin = format!("http://{}", server.addr);
    let ok = post_with(&server, &cookie, &path, body, &[("x-csrf-token", &token), ("origin", &origin)]).await;
    assert_eq!(ok, (200, "{}".to_owned()));
    let cross = [("x-csrf-token", token.as_str()), ("origin", "http://evil.example")];
    assert_eq!(post_with(&server, &cookie, &path, body, &cross).await.0, 403);
    let cross_site = [("x-csrf-token", token.as_str()), ("sec-fetch-site", "cross-site")];
    assert_eq!(post_with(&server, &cookie, &path, body, &cross_site).await.0, 403);

    // Basic: the token of its pages.
    let page = basic(&server, Method::GET, "/console").await.send().await.unwrap().text().await.unwrap();
    let res = basic(&server, Method::POST, &path).await.header("x-csrf-token", csrf_of(&page)).body(body).send();
    assert_eq!(res.await.unwrap().status(), StatusCode::OK);
    let res = basic(&server, Method::POST, &path).await.body(body).send();
    assert_eq!(res.await.unwrap().status(), StatusCode::FORBIDDEN);
    server.server.shutdown().await;
}

#[tokio::test]
async fn the_event_creator_publishes_to_subscribers_and_validates_like_the_api() {
    let server = start_with(console_config(test_config())).await;
    let mut client = server.client().await;
    client.subscribe("room").await;
    let cookie = login(&server).await;
    let token = csrf_of(&get_with(&server, &cookie, "/console").await.text().await.unwrap());
    let path = format!("/console/api/apps/{APP_ID}/events");
    let with_token = [("x-csrf-token", token.as_str())];
    let (status, body) = post_with(
        &server,
        &cookie,
        &path,
        r#"{"channel":"room","event":"greeting","data":"{\"hello\":1}"}"#,
        &with_token,
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "{}"));
    let got = client.recv_event("greeting").await;
    assert_eq!((got["channel"].as_str(), got["data"].as_str()), (Some("room"), Some("{\"hello\":1}")), "{got}");

    let (status, body) = post_with(&server, &cookie, &path, r#"{"channel":"room","event":"#, &with_token).await;
    assert_eq!(status, 400);
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].as_str().unwrap().starts_with("Invalid JSON body"));
    let (status, body) =
        post_with(&server, &cookie, &path, r#"{"channel":"bad channel!","event":"e","data":"x"}"#, &with_token).await;
    assert_eq!(status, 400);
    assert!(body.contains("Invalid channel name"), "{body}");
    let (status, body) = post_with(&server, &cookie, &path, r#"{"channel":"room","data":"x"}"#, &with_token).await;
    assert_eq!((status, body.contains("Missing event name")), (400, true), "{body}");
    let big = format!(r#"{{"channel":"room","event":"e","data":"{}"}}"#, "x".repeat(70 * 1024));
    assert_eq!(post_with(&server, &cookie, &path, &big, &with_token).await.0, 413);
    assert_eq!(post_with(&server, &cookie, "/console/api/apps/nope/events", "{}", &with_token).await.0, 404);

    // Counted as API requests of the app (5 here, whatever their answer), as the usage API shows.
    let counted = eventually_async(WAIT, || async {
        let usage = server.api().get(&format!("/apps/{APP_ID}/usage"), &[]).await.json();
        usage["messages"].as_u64().unwrap_or(0) >= 6 // + 1 delivery
    });
    assert!(counted.await);
    server.server.shutdown().await;
}

#[tokio::test]
async fn channels_and_presence_members_are_listed() {
    let server = start_with(console_config(test_config())).await;
    let mut a = server.client().await;
    a.subscribe("room").await;
    a.subscribe_presence("presence-lobby", r#"{"user_id":"u1","user_info":{"name":"A"}}"#).await;
    let res = basic(&server, Method::GET, &format!("/console/api/apps/{APP_ID}/channels")).await.send().await.unwrap();
    let channels = json_of(res).await;
    assert_eq!(
        channels,
        json!([{"name": "presence-lobby", "subscription_count": 1, "user_count": 1}, {"name": "room", "subscription_count": 1}])
    );
    let members = format!("/console/api/apps/{APP_ID}/channels/presence-lobby/members");
    let res = basic(&server, Method::GET, &members).await.send().await.unwrap();
    assert_eq!(json_of(res).await, json!([{"id": "u1"}]));
    let res = basic(&server, Method::GET, &format!("/console/api/apps/{APP_ID}/channels/room/members")).await;
    let res = res.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(json_of(res).await["error"].as_str().unwrap().contains("presence"));
    server.server.shutdown().await;
}

#[tokio::test]
async fn webhook_dead_letters_are_listed_and_resent_to_a_receiver_that_recovered() {
    let rx = WebhookReceiver::start().await;
    rx.set_status(500);
    let mut config = webhook_config(&rx.url(), &["channel_occupied"], "console-dead");
    config.webhook_retry_max_elapsed = 1;
    let server = start_with(console_config(config)).await;
    let mut a = server.client().await;
    a.subscribe("d1").await;
    let path = format!("/console/api/apps/{APP_ID}/webhooks");
    // While retrying: pending, with its attempts.
    let mut seen_pending = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut listed = Value::Null;
    while Instant::now() < deadline {
        listed = json_of(basic(&server, Method::GET, &path).await.send().await.unwrap()).await;
        if let Some(p) = listed["pending"].as_array().and_then(|p| p.first()) {
            if p["attempts"].as_u64() >= Some(1) {
                seen_pending = p.clone();
            }
        }
        // (The counts follow the table right after its commit.)
        let dead = listed["dead_letters"].as_array().is_some_and(|d| d.len() == 1);
        if dead && listed["pending"] == json!([]) && listed["dead_letters_total"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen_pending["url"], rx.url(), "a retried delivery was listed as pending: {seen_pending}");
    assert!(seen_pending["next_attempt_ms"].is_u64(), "{seen_pending}");
    let dead = &listed["dead_letters"][0];
    assert_eq!(dead["events"], json!([{"name": "channel_occupied", "channel": "d1"}]), "{listed}");
    assert_eq!((dead["url"].as_str(), dead["error"].as_str()), (Some(rx.url().as_str()), Some("HTTP 500")));
    assert!(dead["attempts"].as_u64().unwrap() >= 2 && dead["dead_at_ms"].is_u64(), "{listed}");
    assert_eq!((&listed["pending"], &listed["dead_letters_total"]), (&json!([]), &json!(1)), "{listed}");

    rx.set_status(200);
    let page = basic(&server, Method::GET, "/console").await.send().await.unwrap().text().await.unwrap();
    let token = csrf_of(&page);
    let resend_path = format!("{path}/resend");
    let (status, body) = resend(&server, &resend_path, &token, r#"{"ids": "x"}"#.into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let id = dead["id"].as_u64().unwrap();
    assert_eq!(
        resend(&server, &resend_path, &token, format!(r#"{{"ids": [{id}]}}"#)).await,
        (StatusCode::OK, json!({"resent": 1}))
    );
    assert_eq!(rx.wait_events(1, WAIT).await, [json!({"name": "channel_occupied", "channel": "d1"})]);
    assert_eq!(
        resend(&server, &resend_path, &token, r#"{"all": true}"#.into()).await,
        (StatusCode::OK, json!({"resent": 0}))
    );
    server.server.shutdown().await;
}

/// POSTs a re-send request with Basic and the page's token.
async fn resend(server: &TestServer, path: &str, token: &str, body: String) -> (StatusCode, Value) {
    let res = basic(server, Method::POST, path).await.header("x-csrf-token", token).body(body).send().await.unwrap();
    (res.status(), json_of(res).await)
}

#[tokio::test]
async fn the_live_log_opens_as_an_event_stream_and_is_bounded_per_node() {
    let server = start_with(console_config(test_config())).await;
    let path = format!("/console/apps/{APP_ID}/stream");
    let mut streams = Vec::new();
    for _ in 0..16 {
        let mut res = basic(&server, Method::GET, &path).await.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        let first = res.chunk().await.unwrap().expect("a first chunk");
        assert!(String::from_utf8_lossy(&first).contains(": connected"), "{first:?}");
        streams.push(res);
    }
    let over = basic(&server, Method::GET, &path).await.send().await.unwrap();
    assert_eq!(over.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Closing streams gives their places back.
    streams.truncate(10);
    let reopened = eventually_async(WAIT, || async {
        basic(&server, Method::GET, &path).await.send().await.unwrap().status() == StatusCode::OK
    });
    assert!(reopened.await);
    let unknown = basic(&server, Method::GET, "/console/apps/nope/stream").await.send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    drop(streams);
    // Shutdown ends the open streams instead of waiting on them.
    let started = Instant::now();
    let _open = basic(&server, Method::GET, &path).await.send().await.unwrap();
    server.server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(4), "shutdown waited {:?}", started.elapsed());
}

#[tokio::test]
async fn history_has_the_samples_of_the_last_hour() {
    let server = start_with(console_config(test_config())).await;
    let path = format!("/console/api/apps/{APP_ID}/history");
    let mut history = Value::Null;
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        history = json_of(basic(&server, Method::GET, &path).await.send().await.unwrap()).await;
        if history["samples"].as_array().is_some_and(|s| !s.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(history["interval_s"], 10);
    let sample = &history["samples"][0];
    assert!(sample["t"].as_u64().unwrap() > 1_600_000_000_000, "{history}");
    assert_eq!((sample["connections"].as_u64(), sample["messages"].as_u64()), (Some(0), Some(0)), "{history}");
    let unknown = basic(&server, Method::GET, "/console/api/apps/nope/history").await.send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    server.server.shutdown().await;
}

#[tokio::test]
async fn failed_logins_are_limited_per_address() {
    let server = start_with(console_config(test_config())).await;
    for _ in 0..10 {
        let res = http().get(url(&server, "/console")).basic_auth(USER, Some("guess")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = http()
        .post(url(&server, "/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username={USER}&password=correct+horse+battery"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "even right credentials wait out the minute");
    assert!(res.headers().contains_key("retry-after"));
    server.server.shutdown().await;
}

#[test]
fn config_errors_name_the_console_key() {
    let load = |pairs: &[(&str, &str)]| {
        let env: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        herald::config::load_from(["herald"], &env)
    };
    let err = load(&[("HERALD_CONSOLE_ENABLED", "true")]).unwrap_err().to_string();
    assert!(err.starts_with("console.password: missing"), "{err}");
    let err = load(&[("HERALD_CONSOLE_ENABLED", "true"), ("HERALD_CONSOLE_PASSWORD", "short")]).unwrap_err();
    assert!(err.to_string().starts_with("console.password: too short"), "{err}");
    let ok = load(&[("HERALD_CONSOLE_ENABLED", "1"), ("HERALD_CONSOLE_PASSWORD", "long enough")]).unwrap();
    assert_eq!(ok.console.unwrap().username, "admin");
    let dir = temp_data_dir("console-config");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("herald.toml");
    std::fs::write(&file, "[console]\nenabled = true\npassword = \"1234567\"\n").unwrap();
    let err = herald::config::load_from(["herald", "--config", file.to_str().unwrap()], &HashMap::new()).unwrap_err();
    assert!(err.to_string().starts_with("console.password: too short"), "{err}");
    std::fs::write(&file, "[console]\nenabled = true\npasword = \"12345678\"\n").unwrap();
    let err = herald::config::load_from(["herald", "--config", file.to_str().unwrap()], &HashMap::new()).unwrap_err();
    assert!(err.to_string().contains("pasword"), "{err}");
}

#[tokio::test]
async fn a_console_that_stops_reading_is_dropped_and_delivery_never_waits_for_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start_with(console_config(test_config())).await;
    // A live log whose reader stops after the first chunk: its socket buffers fill, then the
    // tap's ring (1,024 entries) overflows.
    let mut sse = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let auth = base64_basic(USER, PASSWORD);
    let head = format!(
        "GET /console/apps/{APP_ID}/stream HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {auth}\r\n\r\n",
        server.addr
    );
    sse.write_all(head.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains(": connected") {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, sse.read(&mut buf)).await.expect("stream head in time").unwrap();
        assert!(n > 0, "stream closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }

    // Meanwhile a subscriber gets every one of 3,000 events of 4 KiB (12 MiB in all).
    const EVENTS: usize = 3000;
    let mut sub = subscriber(&server, &["flood"]).await;
    let received = tokio::spawn(async move {
        let mut n = 0;
        while n < EVENTS {
            if sub.recv().await["event"] == "big" {
                n += 1;
            }
        }
        n
    });
    let data = "x".repeat(4096);
    for _ in 0..EVENTS / 10 {
        let batch: Vec<Value> = (0..10).map(|_| json!({"name": "big", "channel": "flood", "data": data})).collect();
        let res = post_raw(&server, &batch_path(), json!({ "batch": batch }).to_string().as_bytes()).await;
        assert_eq!(res.status, 200, "{}", res.body);
    }
    let got = tokio::time::timeout(Duration::from_secs(60), received).await.expect("every event delivered in time");
    assert_eq!(got.unwrap(), EVENTS);

    // The stalled console was told it fell behind, and its stream ended.
    let mut rest = Vec::new();
    let read_all = tokio::time::timeout(Duration::from_secs(30), sse.read_to_end(&mut rest)).await;
    assert!(read_all.is_ok(), "the dropped stream was not ended");
    let text = String::from_utf8_lossy(&rest);
    assert!(text.contains("event: dropped"), "no `dropped` in the last {} bytes", rest.len());
    server.server.shutdown().await;
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}
