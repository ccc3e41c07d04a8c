//! The debug tap against running servers (port 0): what a console watching an app is shown
//! of a client's connection, subscriptions, channel events and client events, of API
//! publishes and of webhook deliveries; and, with the Redis adapter (the shared Redis on
//! 6379, a prefix of its own), that a console on one node is shown what happens on another,
//! once, while nothing is published to Redis for an app nobody watches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use herald_core::app::{App, AppLimits};
use herald_core::events::EventKind;
use herald_protocol::api_auth::{string_to_sign, QueryParams};
use herald_protocol::auth::{hmac_sha256_hex, md5_hex};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::{Entry, EntryKind, Watch};
use crate::cluster::ClusterConfig;
use crate::config::adapter::AdapterConfig;
use crate::config::Config;
use crate::server::RunningServer;

const APP: &str = "tap";
const KEY: &str = "tap-key";
const SECRET: &str = "tap-secret";
const WAIT: Duration = Duration::from_secs(5);

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn config(name: &str) -> Config {
    let limits = AppLimits { enable_client_messages: true, ..AppLimits::default() };
    let app = App { id: APP.into(), key: KEY.into(), secret: SECRET.into(), limits };
    let data_dir = std::env::temp_dir().join(format!("herald-tap-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    Config {
        host: "127.0.0.1".into(),
        port: 0,
        apps: vec![app],
        data_dir,
        shutdown_grace: 2,
        shutdown_drain_window_ms: 0,
        ..Config::default()
    }
}

/// A client connected to `server`, with its socket id.
async fn connect(server: &RunningServer) -> (Ws, String) {
    let url = format!("ws://{}/app/{KEY}?protocol=7", server.local_addr());
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url)).await.unwrap().unwrap();
    let first = next_frame(&mut ws).await;
    assert_eq!(first["event"], "pusher:connection_established");
    let data: Value = serde_json::from_str(first["data"].as_str().unwrap()).unwrap();
    (ws, data["socket_id"].as_str().unwrap().to_owned())
}

async fn next_frame(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("a frame in time") {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("connection ended: {other:?}"),
        }
    }
}

/// Subscribes to a private channel (signed like an auth endpoint would) and waits for the reply.
async fn subscribe(ws: &mut Ws, socket_id: &str, channel: &str) {
    let auth = format!("{KEY}:{}", hmac_sha256_hex(SECRET.as_bytes(), format!("{socket_id}:{channel}").as_bytes()));
    let frame = json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth}});
    ws.send(Message::text(frame.to_string())).await.unwrap();
    loop {
        let reply = next_frame(ws).await;
        if reply["event"] == "pusher_internal:subscription_succeeded" {
            return;
        }
        assert_ne!(reply["event"], "pusher:subscription_error", "{reply}");
    }
}

/// `POST /apps/{APP}/events`, signed; panics unless 200.
async fn api_publish(server: &RunningServer, channels: &[&str], event: &str, data: &str) {
    let body = json!({"name": event, "channels": channels, "data": data}).to_string();
    let path = format!("/apps/{APP}/events");
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let query = format!("auth_key={KEY}&auth_timestamp={ts}&auth_version=1.0&body_md5={}", md5_hex(body.as_bytes()));
    let sign = string_to_sign("POST", &path, &QueryParams::parse(&query));
    let signature = hmac_sha256_hex(SECRET.as_bytes(), sign.as_bytes());
    let url = format!("http://{}{path}?{query}&auth_signature={signature}", server.local_addr());
    let client = reqwest::Client::new();
    let res = client.post(url).header("content-type", "application/json").body(body).send().await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap_or_default());
}

/// Entries until one of `kind` (included); panics after [`WAIT`].
async fn until(watch: &mut Watch, kind: EntryKind) -> Vec<Arc<Entry>> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let entry = tokio::time::timeout_at(deadline, watch.recv())
            .await
            .unwrap_or_else(|_| panic!("no {kind:?} within {WAIT:?}; saw {seen:#?}"))
            .expect("not dropped");
        let done = entry.kind == kind;
        seen.push(entry);
        if done {
            return seen;
        }
    }
}

fn kinds(entries: &[Arc<Entry>]) -> Vec<EntryKind> {
    entries.iter().map(|e| e.kind).collect()
}

#[tokio::test]
async fn a_console_is_shown_a_connection_its_subscription_channel_and_client_events_api_messages_and_its_close() {
    let server = crate::start(config("single")).await.unwrap();
    let state = server.state().clone();
    let mut watch = state.console_tap.watch(APP);
    let (mut ws, socket_id) = connect(&server).await;
    subscribe(&mut ws, &socket_id, "private-room").await;
    let event = json!({"event": "client-typing", "channel": "private-room", "data": {"who": "ann"}});
    ws.send(Message::text(event.to_string())).await.unwrap();
    let seen = until(&mut watch, EntryKind::ClientEvent).await;
    assert_eq!(
        kinds(&seen),
        [EntryKind::ConnectionOpened, EntryKind::ChannelOccupied, EntryKind::Subscribed, EntryKind::ClientEvent]
    );
    assert!(seen
        .iter()
        .filter(|e| e.kind != EntryKind::ChannelOccupied)
        .all(|e| e.socket_id.as_deref() == Some(&*socket_id)));
    let client_event = &seen[3];
    assert_eq!(
        (client_event.channel.as_deref(), client_event.event.as_deref(), client_event.data.as_deref()),
        (Some("private-room"), Some("client-typing"), Some(r#"{"who":"ann"}"#))
    );

    api_publish(&server, &["private-room", "news"], "price", "7").await;
    let seen = until(&mut watch, EntryKind::ApiMessage).await;
    let seen = [seen, until(&mut watch, EntryKind::ApiMessage).await].concat();
    let channels: Vec<_> =
        seen.iter().map(|e| (e.kind, e.channel.as_deref(), e.event.as_deref(), e.data.as_deref())).collect();
    assert_eq!(
        channels,
        [
            (EntryKind::ApiMessage, Some("private-room"), Some("price"), Some("7")),
            (EntryKind::ApiMessage, Some("news"), Some("price"), Some("7"))
        ],
        "one entry per channel"
    );

    let bye = CloseFrame { code: CloseCode::Away, reason: "bye".into() };
    ws.close(Some(bye)).await.unwrap();
    let seen = until(&mut watch, EntryKind::ChannelVacated).await;
    assert_eq!(kinds(&seen), [EntryKind::ConnectionClosed, EntryKind::Unsubscribed, EntryKind::ChannelVacated]);
    assert_eq!(seen[0].code, Some(1001), "the code of the client's close frame");
    drop(watch);
    assert!(!state.console_tap.watching(APP));
    server.shutdown().await;
}

/// A webhook endpoint on port 0 answering every request with the status in `status`.
async fn receiver(status: Arc<std::sync::atomic::AtomicU16>) -> String {
    let hook = move || {
        let status = status.clone();
        async move { axum::http::StatusCode::from_u16(status.load(std::sync::atomic::Ordering::SeqCst)).unwrap() }
    };
    let app = axum::Router::new().route("/hook", axum::routing::post(hook));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn a_console_is_shown_failed_webhook_attempts_dead_letters_and_deliveries_with_target_and_events() {
    use crate::webhooks::config::{AppWebhooks, WebhookTarget};
    let status = Arc::new(std::sync::atomic::AtomicU16::new(500));
    let url = receiver(status.clone()).await;
    let mut config = config("webhooks");
    let target = WebhookTarget {
        url: url.clone(),
        event_types: [EventKind::Occupied].into_iter().collect(),
        filter: Default::default(),
        headers: vec![],
    };
    config.webhooks.insert(APP.to_owned(), AppWebhooks { batch: false, targets: vec![target], ..Default::default() });
    config.webhook_retry_initial_ms = 50;
    config.webhook_retry_max_elapsed = 1;
    let server = crate::start(config).await.unwrap();
    let mut watch = server.state().console_tap.watch(APP);
    let (mut ws, socket_id) = connect(&server).await;
    subscribe(&mut ws, &socket_id, "private-a").await;

    let failed = until(&mut watch, EntryKind::WebhookFailed).await.pop().unwrap();
    let detail = failed.detail.as_deref().unwrap();
    assert!(detail.starts_with(&format!("{url} [channel_occupied]: HTTP 500")), "{detail}");
    let dead = until(&mut watch, EntryKind::WebhookDeadLetter).await.pop().unwrap();
    assert!(dead.detail.as_deref().unwrap().contains("gave up after"), "{dead:?}");

    status.store(200, std::sync::atomic::Ordering::SeqCst);
    subscribe(&mut ws, &socket_id, "private-b").await;
    let delivered = until(&mut watch, EntryKind::WebhookDelivered).await.pop().unwrap();
    let detail = delivered.detail.as_deref().unwrap();
    assert!(detail.starts_with(&format!("{url} [channel_occupied]: delivered")), "{detail}");
    server.shutdown().await;
}

/// A node of a cluster on the shared Redis, under `prefix`.
async fn node(prefix: &str, name: &str) -> RunningServer {
    let mut config = config(name);
    config.adapter = AdapterConfig::Redis(ClusterConfig {
        url: "redis://127.0.0.1:6379".into(),
        prefix: prefix.into(),
        node_timeout: Duration::from_secs(2),
        heartbeat: Duration::from_millis(400),
        leave_grace: Duration::from_millis(200),
        removal_delay: Duration::from_millis(200),
    });
    config.webhook_removal_delay_ms = 200;
    crate::start(config).await.unwrap()
}

/// Every message published on the console channels of `prefix`, as they arrive.
async fn spy(
    prefix: &str,
) -> (fred::clients::SubscriberClient, tokio::sync::broadcast::Receiver<fred::types::Message>) {
    use fred::prelude::*;
    let spy = Builder::from_config(fred::prelude::Config::from_url("redis://127.0.0.1:6379").unwrap())
        .build_subscriber_client()
        .unwrap();
    spy.init().await.unwrap();
    let rx = spy.message_rx();
    spy.psubscribe(format!("{prefix}:tap:*")).await.unwrap();
    (spy, rx)
}

#[tokio::test]
async fn a_console_on_one_node_is_shown_what_happens_on_another_once_and_nothing_is_published_while_nobody_watches() {
    let prefix = format!("taptest{}-{}", std::process::id(), rand::random::<u32>());
    let (_spy, mut published) = spy(&prefix).await;
    let (a, b) = (node(&prefix, "node-a").await, node(&prefix, "node-b").await);

    // Nobody watches: traffic on B publishes nothing on the console channels.
    let (mut early, early_id) = connect(&b).await;
    subscribe(&mut early, &early_id, "private-quiet").await;
    api_publish(&b, &["private-quiet"], "unseen", "0").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(published.try_recv().is_err(), "nothing published for an app nobody watches");
    drop(early);

    // A console on A: B learns within a tick or two that A watches.
    let mut watch = a.state().console_tap.watch(APP);
    let started = Instant::now();
    while !b.state().console_tap.watching(APP) {
        assert!(started.elapsed() < WAIT, "node B never learnt that node A watches");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (mut ws, socket_id) = connect(&b).await;
    subscribe(&mut ws, &socket_id, "private-room").await;
    let event = json!({"event": "client-hi", "channel": "private-room", "data": "x"});
    ws.send(Message::text(event.to_string())).await.unwrap();
    api_publish(&b, &["private-room"], "price", "7").await;
    let mut seen = until(&mut watch, EntryKind::ApiMessage).await;
    // What A records itself goes straight to its console: one entry, not two.
    let (mut local, local_id) = connect(&a).await;
    subscribe(&mut local, &local_id, "private-here").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(Ok(entry)) = tokio::time::timeout(Duration::from_millis(200), watch.recv()).await {
        seen.push(entry);
    }
    // The quiet channel's vacated verdict may land in between (a different channel).
    // Entries of different sources may interleave either way (the occupied verdict takes a
    // Redis round trip): compared as sets of exactly-once entries.
    let mut ours: Vec<_> = seen
        .iter()
        .filter(|e| e.channel.as_deref() != Some("private-quiet") && e.socket_id.as_deref() != Some(&*early_id))
        .map(|e| (e.kind, e.socket_id.as_deref().map(str::to_owned), e.channel.as_deref().map(str::to_owned)))
        .collect();
    ours.sort_by_key(|e| format!("{e:?}"));
    let from = |id: &str| Some(id.to_owned());
    let on = |c: &str| Some(c.to_owned());
    let mut expected = vec![
        (EntryKind::ConnectionOpened, from(&socket_id), None),
        (EntryKind::Subscribed, from(&socket_id), on("private-room")),
        (EntryKind::ChannelOccupied, None, on("private-room")),
        (EntryKind::ClientEvent, from(&socket_id), on("private-room")),
        (EntryKind::ApiMessage, None, on("private-room")),
        (EntryKind::ConnectionOpened, from(&local_id), None),
        (EntryKind::Subscribed, from(&local_id), on("private-here")),
        (EntryKind::ChannelOccupied, None, on("private-here")),
    ];
    expected.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(ours, expected, "B's entries (the occupied verdict from the adapter) and A's own, once each");

    // The console closes: B stops publishing within a tick or two.
    drop(watch);
    let started = Instant::now();
    while b.state().console_tap.watching(APP) {
        assert!(started.elapsed() < WAIT, "node B kept forwarding after the console closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while published.try_recv().is_ok() {}
    api_publish(&b, &["private-room"], "after", "1").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(published.try_recv().is_err(), "nothing published once nobody watches");
    drop((ws, local));
    a.shutdown().await;
    b.shutdown().await;
}
