//! Webhooks, black-box: herald in-process with a local receiver (PROTOCOL.md 11). Payloads and
//! signatures of every event type, removal debouncing, batching, filters, retries in order,
//! dead letters, graceful-shutdown flush, and that a bad receiver never slows sockets.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

const ALL: [&str; 7] = [
    "channel_occupied",
    "channel_vacated",
    "member_added",
    "member_removed",
    "client_event",
    "cache_miss",
    "subscription_count",
];

fn assert_signed(hit: &WebhookHit) {
    assert_eq!(hit.headers.get("content-type").map(String::as_str), Some("application/json"));
    assert_eq!(hit.headers.get("x-pusher-key").map(String::as_str), Some(KEY));
    assert_eq!(hit.headers.get("x-pusher-signature"), Some(&hmac_hex(SECRET, &hit.body)), "signature of {}", hit.body);
    let time_ms = hit.json()["time_ms"].as_u64().expect("time_ms");
    let now = now() * 1000;
    assert!(time_ms <= now + 1000 && time_ms + 60_000 > now, "time_ms {time_ms} vs now {now}");
}

#[tokio::test]
async fn every_event_type_has_exact_payload_and_valid_signature() {
    let rx = WebhookReceiver::start().await;
    let mut config = webhook_config(&rx.url(), &ALL, "all-types");
    config.apps[0].limits.enable_subscription_count = true;
    let server = start_with(config).await;

    let mut a = server.client().await;
    let joined = a.subscribe_presence("presence-room", r#"{"user_id":"u-1"}"#).await;
    assert_eq!(joined["event"], "pusher_internal:subscription_succeeded");
    a.send(json!({"event": "client-typing", "channel": "presence-room", "data": {"typing": true}})).await;
    a.subscribe("my-channel").await;
    a.subscribe("cache-btc").await;
    let before = rx.wait_events(7, WAIT).await;
    drop(a);
    let events = rx.wait_events(11, WAIT).await;

    let socket_id = before.iter().find(|e| e["name"] == "client_event").unwrap()["socket_id"].clone();
    let expected = [
        json!({"name":"channel_occupied","channel":"presence-room"}),
        json!({"name":"member_added","channel":"presence-room","user_id":"u-1"}),
        json!({"name":"client_event","channel":"presence-room","event":"client-typing","data":"{\"typing\":true}","socket_id":socket_id,"user_id":"u-1"}),
        json!({"name":"channel_occupied","channel":"my-channel"}),
        json!({"name":"subscription_count","channel":"my-channel","subscription_count":1}),
        json!({"name":"channel_occupied","channel":"cache-btc"}),
        json!({"name":"cache_miss","channel":"cache-btc"}),
        json!({"name":"subscription_count","channel":"cache-btc","subscription_count":1}),
    ];
    assert_eq!(&events[..8], &expected[..], "{events:#?}");
    let mut removals: Vec<Value> = events[8..].to_vec();
    removals.sort_by_key(|e| e.to_string());
    assert!(removals.contains(&json!({"name":"member_removed","channel":"presence-room","user_id":"u-1"})));
    assert!(removals.contains(&json!({"name":"channel_vacated","channel":"presence-room"})));
    assert!(removals.contains(&json!({"name":"channel_vacated","channel":"my-channel"})));
    // member_removed before the presence channel's vacated (per-channel order)
    let pos = |v: Value| events.iter().position(|e| *e == v).unwrap();
    assert!(
        pos(json!({"name":"member_removed","channel":"presence-room","user_id":"u-1"}))
            < pos(json!({"name":"channel_vacated","channel":"presence-room"}))
    );
    for hit in rx.delivered() {
        assert_eq!(hit.json()["events"].as_array().unwrap().len(), 1, "unbatched app: one event per request");
        assert_signed(&hit);
    }
    server.server.shutdown().await;
}

#[tokio::test]
async fn vacated_suppressed_when_client_reconnects_within_delay() {
    let rx = WebhookReceiver::start().await;
    let mut config = webhook_config(&rx.url(), &ALL[..4], "debounce");
    config.webhook_removal_delay_ms = 1000;
    let server = start_with(config).await;

    let mut a = server.client().await;
    a.subscribe_presence("presence-room", r#"{"user_id":"u-1"}"#).await;
    a.subscribe("news").await;
    rx.wait_events(3, WAIT).await;
    // "page reload": disconnect, reconnect, resubscribe well within the delay
    drop(a);
    let mut b = server.client().await;
    b.subscribe_presence("presence-room", r#"{"user_id":"u-1"}"#).await;
    b.subscribe("news").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        names(&rx.events()),
        ["channel_occupied:presence-room", "member_added:presence-room", "channel_occupied:news"],
        "no vacated/occupied or removed/added pair for a reload"
    );
    // a real departure is reported once the delay has passed
    let left = Instant::now();
    drop(b);
    let events = rx.wait_events(6, WAIT).await;
    assert!(left.elapsed() >= Duration::from_millis(900), "removals are held back for the delay");
    let mut tail = names(&events[3..]);
    tail.sort();
    assert_eq!(tail, ["channel_vacated:news", "channel_vacated:presence-room", "member_removed:presence-room"]);
    server.server.shutdown().await;
}

#[tokio::test]
async fn batched_app_sends_several_events_per_request() {
    let rx = WebhookReceiver::start().await;
    let mut config = webhook_config(&rx.url(), &["channel_occupied"], "batch");
    config.webhooks.get_mut(APP_ID).unwrap().batch = true;
    config.webhook_batch_ms = 300;
    config.webhook_batch_max = 3;
    let server = start_with(config).await;
    let mut a = server.client().await;
    for ch in ["b1", "b2", "b3", "b4"] {
        a.subscribe(ch).await;
    }
    rx.wait_events(4, WAIT).await;
    let sizes: Vec<usize> = rx.delivered().iter().map(|h| h.json()["events"].as_array().unwrap().len()).collect();
    assert_eq!(sizes, [3, 1], "a full batch at webhook_batch_max, the rest after the window");
    assert_eq!(
        names(&rx.events()),
        ["channel_occupied:b1", "channel_occupied:b2", "channel_occupied:b3", "channel_occupied:b4"]
    );
    rx.delivered().iter().for_each(assert_signed);
    server.server.shutdown().await;
}

#[tokio::test]
async fn filter_and_event_types_select_what_a_target_receives() {
    use herald::webhooks::config::{ChannelFilter, WebhookTarget};
    use herald_core::events::{EventKind, EventKinds};
    let presence_rx = WebhookReceiver::start().await;
    let all_rx = WebhookReceiver::start().await;
    let mut config = webhook_config(&all_rx.url(), &["channel_occupied"], "filter");
    config.webhooks.get_mut(APP_ID).unwrap().targets.push(WebhookTarget {
        url: presence_rx.url(),
        event_types: EventKinds::of(&[EventKind::MemberAdded]),
        filter: ChannelFilter { starts_with: Some("presence-".into()), ends_with: None },
        headers: vec![("X-Extra".into(), "1".into())],
    });
    let server = start_with(config).await;
    let mut a = server.client().await;
    a.subscribe("public-1").await;
    a.subscribe_presence("presence-room", r#"{"user_id":"u-1"}"#).await;
    all_rx.wait_events(2, WAIT).await;
    presence_rx.wait_events(1, WAIT).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(names(&all_rx.events()), ["channel_occupied:public-1", "channel_occupied:presence-room"]);
    assert_eq!(presence_rx.events(), [json!({"name":"member_added","channel":"presence-room","user_id":"u-1"})]);
    assert_eq!(presence_rx.delivered()[0].headers.get("x-extra").map(String::as_str), Some("1"));
    server.server.shutdown().await;
}

#[tokio::test]
async fn failed_deliveries_retry_until_receiver_recovers_in_order() {
    let rx = WebhookReceiver::start().await;
    rx.set_status(500);
    let server = start_with(webhook_config(&rx.url(), &ALL[..2], "retry")).await;
    for round in 0..3 {
        let mut a = server.client().await;
        a.subscribe("ch-a").await;
        a.subscribe("ch-b").await;
        drop(a);
        // wait until this round's two vacated events have left the removal delay and are in
        // the outbox, so the next round's subscribes cannot cancel them (a reconnect within the
        // delay is debounced by design); a fixed sleep lost a round on a loaded machine
        let queued = 4.0 * f64::from(round + 1);
        let deadline = Instant::now() + WAIT;
        while metric(server.addr, "herald_webhook_outbox_depth").await < queued {
            assert!(Instant::now() < deadline, "round {round}: the outbox never held {queued} entries");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(rx.delivered().is_empty(), "round {round}: nothing accepted yet");
    }
    assert!(rx.hits().len() >= 2, "deliveries were attempted while the receiver failed");
    rx.set_status(200);
    let events = rx.wait_events(12, Duration::from_secs(30)).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(rx.events().len(), 12, "each delivery arrives once it recovers: {:#?}", rx.events());
    for ch in ["ch-a", "ch-b"] {
        let seq: Vec<&str> =
            events.iter().filter(|e| e["channel"] == ch).map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(seq, ["channel_occupied", "channel_vacated"].repeat(3), "order on {ch}");
    }
    assert!(metric(server.addr, "herald_webhook_failed_attempts_total").await >= 2.0);
    assert!(metric(server.addr, "herald_webhook_deliveries_delivered_total").await >= 12.0);
    assert_eq!(metric(server.addr, "herald_webhook_outbox_depth").await, 0.0);
    server.server.shutdown().await;
}

#[tokio::test]
async fn hanging_receiver_does_not_delay_socket_delivery() {
    let rx = WebhookReceiver::start().await;
    rx.set_hang(true);
    let mut config = webhook_config(&rx.url(), &ALL, "hang");
    config.webhook_queue_size = 16;
    config.apps[0].limits.max_client_events_per_second = 1000;
    let server = start_with(config).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.subscribe_private("private-chat").await;
    b.subscribe_private("private-chat").await;
    for i in 0..50 {
        // every round produces webhook events the hanging receiver never takes
        let started = Instant::now();
        a.send(json!({"event": "client-msg", "channel": "private-chat", "data": {"i": i}})).await;
        let got = b.recv_event("client-msg").await;
        assert_eq!(data_of(&got)["i"], i);
        assert!(started.elapsed() < Duration::from_millis(500), "client event {i} took {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut c = server.client().await;
        c.subscribe(&format!("churn-{i}")).await;
    }
    let started = Instant::now();
    let resp = server.api().trigger(json!({"name": "e", "channel": "private-chat", "data": "x"})).await;
    assert_eq!(resp.status, 200);
    b.recv_event("e").await;
    assert!(started.elapsed() < Duration::from_millis(500));
    rx.set_hang(false);
    drop(server); // a hanging worker must not hold up the test either
}

#[tokio::test]
async fn dead_letters_listed_and_resent() {
    let rx = WebhookReceiver::start().await;
    rx.set_status(503);
    let mut config = webhook_config(&rx.url(), &["channel_occupied"], "dead");
    config.webhook_retry_max_elapsed = 1;
    let server = start_with(config).await;
    let mut a = server.client().await;
    a.subscribe("d1").await;
    a.subscribe("d2").await;
    let api = server.api();
    let path = format!("/apps/{APP_ID}/webhooks/dead_letters");
    let mut list = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        list = api.get(&path, &[]).await.json()["dead_letters"].clone();
        if list.as_array().is_some_and(|l| l.len() == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let letters = list.as_array().expect("a JSON list").clone();
    assert_eq!(letters.len(), 2, "{list}");
    assert_eq!(letters[0]["events"], json!([{"name":"channel_occupied","channel":"d1"}]));
    assert_eq!(letters[0]["url"], rx.url());
    assert_eq!(letters[0]["last_error"], "HTTP 503");
    assert!(letters[0]["attempts"].as_u64().unwrap() >= 2);
    assert_eq!(metric(server.addr, "herald_webhook_dead_lettered_total").await, 2.0);

    // unsigned → 401; unknown id → 404
    let unsigned = raw_http(server.addr, "GET", &path, b"").await;
    assert_eq!(unsigned.status, 401);
    assert_eq!(api.post(&format!("{path}/999999/resend"), &json!({})).await.status, 404);

    rx.set_status(200);
    let id = letters[1]["id"].as_u64().unwrap();
    let resp = api.post(&format!("{path}/{id}/resend"), &json!({})).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json(), json!({"resent": 1}));
    let events = rx.wait_events(1, WAIT).await;
    assert_eq!(events, [json!({"name":"channel_occupied","channel":"d2"})]);
    assert_signed(&rx.delivered()[0]);

    // the CLI calls the same endpoints
    let bin = env!("CARGO_BIN_EXE_herald");
    let url = format!("http://{}", server.addr);
    let args = ["--url", &url, "--app-id", APP_ID, "--key", KEY, "--secret", SECRET];
    let cli = |action: &'static str| {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(bin).arg("dead-letters").arg(action).args(args).output().unwrap()
        })
    };
    let out = cli("list").await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["dead_letters"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["next"], Value::Null, "{listed}");
    let out = cli("resend-all").await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), json!({"resent": 1}));
    rx.wait_events(2, WAIT).await;
    assert_eq!(api.get(&path, &[]).await.json(), json!({"dead_letters": [], "next": null}));
    server.server.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_flushes_held_removals() {
    let rx = WebhookReceiver::start().await;
    let mut config = webhook_config(&rx.url(), &ALL[..2], "flush");
    config.webhook_removal_delay_ms = 60_000;
    let server = start_with(config).await;
    let mut a = server.client().await;
    a.subscribe("bye").await;
    rx.wait_events(1, WAIT).await;
    drop(a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    server.server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(names(&rx.events()), ["channel_occupied:bye", "channel_vacated:bye"]);
}

#[tokio::test]
async fn outbox_resumes_after_graceful_restart() {
    let rx = WebhookReceiver::start().await;
    rx.set_status(500);
    let config = webhook_config(&rx.url(), &["channel_occupied"], "resume");
    let server = start_with(config.clone()).await;
    let mut a = server.client().await;
    a.subscribe("r1").await;
    a.subscribe("r2").await;
    assert!(eventually(WAIT, || !rx.hits().is_empty()).await);
    drop(a);
    server.server.shutdown().await; // cannot deliver: left in the outbox
    assert!(rx.delivered().is_empty());
    rx.set_status(200);
    let server = start_with(config).await;
    let events = rx.wait_events(2, WAIT).await;
    assert_eq!(names(&events), ["channel_occupied:r1", "channel_occupied:r2"]);
    server.server.shutdown().await;
}

#[tokio::test]
async fn no_webhooks_creates_no_data_dir() {
    let dir = temp_data_dir("none");
    let mut config = test_config();
    config.data_dir = dir.clone();
    let server = start_with(config).await;
    let mut a = server.client().await;
    a.subscribe("x").await;
    assert!(!dir.exists());
    server.server.shutdown().await;
}

#[tokio::test]
async fn unusable_data_dir_is_a_startup_error_naming_it() {
    let file = temp_data_dir("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let mut config = webhook_config("http://127.0.0.1:9/hook", &["channel_occupied"], "unused");
    config.data_dir = file.join("sub");
    let err = herald::start(config).await.err().expect("start fails").to_string();
    assert!(err.starts_with("data_dir "), "{err}");
}
