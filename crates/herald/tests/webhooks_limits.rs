//! Webhook limits, black-box: herald in-process with local receivers. One app's flood of
//! unique cache channels cannot delay or drop another app's webhooks, the cache_miss
//! de-duplication stays within its cap, the outbox refuses (and counts) an app's deliveries
//! beyond `webhook_max_pending`, dead letters are pruned by count and by age, and the
//! dead-letter list pages through every letter exactly once.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use herald::webhooks::config::{AppWebhooks, WebhookTarget};
use herald_core::events::{EventKind, EventKinds};
use serde_json::{json, Value};
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// Waits for a long flow of webhooks on a loaded machine (a condition is polled; this only
/// bounds a failing run).
const LONG: Duration = Duration::from_secs(60);

fn target(url: &str, kinds: &[EventKind]) -> WebhookTarget {
    WebhookTarget {
        url: url.to_owned(),
        event_types: EventKinds::of(kinds),
        filter: Default::default(),
        headers: vec![],
    }
}

async fn dead_letter_page(api: &Api, query: &[(&str, &str)]) -> Value {
    let resp = api.get(&format!("/apps/{APP_ID}/webhooks/dead_letters"), query).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.json()
}

/// Polls until the app has `n` dead letters; returns the page of them.
async fn wait_dead_letters(api: &Api, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let letters = dead_letter_page(api, &[("limit", "1000")]).await["dead_letters"].as_array().unwrap().clone();
        if letters.len() == n {
            return letters;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} dead letters, got {}: {letters:#?}",
            letters.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn channels_of(letters: &[Value]) -> Vec<String> {
    letters.iter().map(|l| l["events"][0]["channel"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_app_cannot_drop_another_apps_channel_occupied_webhooks() {
    let flood_rx = WebhookReceiver::start().await;
    let rx = WebhookReceiver::start().await;
    let mut config = webhook_config(&rx.url(), &["channel_occupied"], "fair");
    config.apps.push(app("flood", "flood-key", "flood-secret"));
    config.webhooks.insert(
        "flood".to_owned(),
        AppWebhooks {
            targets: vec![target(&flood_rx.url(), &[EventKind::CacheMiss])],
            max_pending: Some(50),
            ..Default::default()
        },
    );
    config.webhook_queue_size = 256;
    config.webhook_cache_miss_dedup_max = 100;
    let server = start_with(config).await;

    // Three anonymous connections churning unique cache channels, reading (and discarding)
    // what they are sent so that they are never disconnected as slow consumers.
    let mut flooders = Vec::new();
    for c in 0..3 {
        let client = Client::connect_established(&server.ws_url("flood-key")).await;
        let (mut tx, mut rx) = client.ws.split();
        tokio::spawn(async move { while rx.next().await.is_some() {} });
        flooders.push(tokio::spawn(async move {
            for i in 0..3000 {
                let channel = format!("cache-{c}-{i}");
                let sub = json!({"event": "pusher:subscribe", "data": {"channel": channel}});
                let unsub = json!({"event": "pusher:unsubscribe", "data": {"channel": channel}});
                tx.send(Message::text(sub.to_string())).await.unwrap();
                tx.send(Message::text(unsub.to_string())).await.unwrap();
            }
        }));
    }

    // Meanwhile the other app opens 200 channels; every channel_occupied arrives.
    let mut a = server.client().await;
    let mut dedup_samples = Vec::new();
    for i in 0..200 {
        a.subscribe(&format!("room-{i}")).await;
        if i % 20 == 0 {
            dedup_samples.push(metric(server.addr, "herald_webhook_cache_miss_dedup_entries").await);
        }
    }
    let events = rx.wait_events(200, LONG).await;
    let channels: BTreeSet<String> = names(&events).into_iter().collect();
    let expected: BTreeSet<String> = (0..200).map(|i| format!("channel_occupied:room-{i}")).collect();
    assert_eq!(channels, expected);
    assert_eq!(events.len(), 200, "each exactly once");
    for f in flooders {
        f.await.unwrap();
    }

    let dropped = |app: &str| format!(r#"herald_webhook_events_dropped_total{{app_id="{app}"}}"#);
    let refused = |app: &str| format!(r#"herald_webhook_deliveries_refused_total{{app_id="{app}"}}"#);
    assert_eq!(metric(server.addr, &dropped(APP_ID)).await, 0.0);
    assert_eq!(metric(server.addr, &refused(APP_ID)).await, 0.0);
    // The flood was held back on its own app: its outbox filled (50) and the rest was refused
    // or dropped.
    let flood_cut = metric(server.addr, &dropped("flood")).await + metric(server.addr, &refused("flood")).await;
    assert!(flood_cut > 0.0, "the flood exceeded its own limits");
    // The de-duplication table holds at most its cap per app while unique channels churn.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        dedup_samples.push(metric(server.addr, "herald_webhook_cache_miss_dedup_entries").await);
        if dedup_samples.last() == Some(&100.0) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the table fills up to its cap: {dedup_samples:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(dedup_samples.iter().all(|&n| n <= 100.0), "{dedup_samples:?}");
    server.server.shutdown().await;
}

#[tokio::test]
async fn outbox_cap_refuses_an_apps_new_deliveries_and_counts_them() {
    let rx = WebhookReceiver::start().await;
    rx.set_status(503);
    let mut config = webhook_config(&rx.url(), &["channel_occupied"], "outbox-cap");
    config.webhooks.get_mut(APP_ID).unwrap().max_pending = Some(5);
    let server = start_with(config).await;
    let mut a = server.client().await;
    for i in 0..20 {
        a.subscribe(&format!("c-{i}")).await;
    }
    let refused = format!(r#"herald_webhook_deliveries_refused_total{{app_id="{APP_ID}"}}"#);
    let ok = eventually_async(WAIT, || async { metric(server.addr, &refused).await == 15.0 }).await;
    assert!(ok, "refused: {}", metric(server.addr, &refused).await);
    assert_eq!(metric(server.addr, "herald_webhook_outbox_depth").await, 5.0);
    assert_eq!(metric(server.addr, "herald_webhook_deliveries_queued_total").await, 5.0);

    // The receiver recovers: the five kept deliveries arrive in order, then new ones are
    // accepted again.
    rx.set_status(200);
    let events = rx.wait_events(5, WAIT).await;
    assert_eq!(names(&events), (0..5).map(|i| format!("channel_occupied:c-{i}")).collect::<Vec<_>>());
    a.subscribe("after").await;
    let events = rx.wait_events(6, WAIT).await;
    assert_eq!(names(&events[5..]), ["channel_occupied:after"]);
    assert_eq!(metric(server.addr, &refused).await, 15.0);
    server.server.shutdown().await;
}

#[tokio::test]
async fn dead_letters_beyond_the_cap_are_pruned_oldest_first() {
    let rx = WebhookReceiver::start().await;
    rx.set_status(503);
    let mut config = webhook_config(&rx.url(), &["channel_occupied"], "dead-cap");
    config.webhook_retry_max_elapsed = 1;
    config.webhook_dead_letters_max = 3;
    let server = start_with(config).await;
    let mut a = server.client().await;
    for i in 0..6 {
        a.subscribe(&format!("d-{i}")).await;
    }
    let pruned = format!(r#"herald_webhook_dead_letters_pruned_total{{app_id="{APP_ID}",reason="count"}}"#);
    let ok = eventually_async(LONG, || async { metric(server.addr, &pruned).await == 3.0 }).await;
    assert!(ok, "pruned: {}", metric(server.addr, &pruned).await);
    let letters = wait_dead_letters(&server.api(), 3).await;
    assert_eq!(channels_of(&letters), ["d-3", "d-4", "d-5"], "the newest three are kept");
    assert_eq!(metric(server.addr, "herald_webhook_dead_lettered_total").await, 6.0);
    server.server.shutdown().await;
}

#[tokio::test]
async fn dead_letters_older_than_the_apps_max_age_are_pruned() {
    let rx = WebhookReceiver::start().await;
    rx.set_status(503);
    let mut config = webhook_config(&rx.url(), &["channel_occupied"], "dead-age");
    config.webhook_retry_max_elapsed = 1;
    config.webhooks.get_mut(APP_ID).unwrap().dead_letter_max_age = Some(1);
    let server = start_with(config).await;
    let mut a = server.client().await;
    for i in 0..4 {
        a.subscribe(&format!("old-{i}")).await;
    }
    let dead = "herald_webhook_dead_lettered_total";
    assert!(eventually_async(LONG, || async { metric(server.addr, dead).await == 4.0 }).await);
    let pruned = format!(r#"herald_webhook_dead_letters_pruned_total{{app_id="{APP_ID}",reason="age"}}"#);
    let ok = eventually_async(LONG, || async { metric(server.addr, &pruned).await == 4.0 }).await;
    assert!(ok, "pruned by age: {}", metric(server.addr, &pruned).await);
    assert_eq!(dead_letter_page(&server.api(), &[]).await, json!({"dead_letters": [], "next": null}));
    server.server.shutdown().await;
}

#[tokio::test]
async fn dead_letter_pages_walk_every_letter_exactly_once() {
    let rx = WebhookReceiver::start().await;
    rx.set_status(503);
    let mut config = webhook_config(&rx.url(), &["channel_occupied"], "dead-pages");
    config.webhook_retry_max_elapsed = 1;
    let server = start_with(config).await;
    let mut a = server.client().await;
    for i in 0..25 {
        a.subscribe(&format!("p-{i:02}")).await;
    }
    let api = server.api();
    let all = wait_dead_letters(&api, 25).await;
    let default_page = dead_letter_page(&api, &[]).await;
    assert_eq!(default_page["dead_letters"].as_array().unwrap().len(), 25, "default page size is 100");
    assert_eq!(default_page["next"], Value::Null);

    let mut walked: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![("limit", "7")];
        if let Some(a) = &after {
            query.push(("after", a.as_str()));
        }
        let page = dead_letter_page(&api, &query).await;
        pages += 1;
        walked.extend(page["dead_letters"].as_array().unwrap().iter().cloned());
        match page["next"].as_u64() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 4, "7 + 7 + 7 + 4");
    assert_eq!(walked, all, "every letter once, oldest first");
    let ids: Vec<u64> = walked.iter().map(|l| l["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(channels_of(&walked), (0..25).map(|i| format!("p-{i:02}")).collect::<Vec<_>>());

    let path = format!("/apps/{APP_ID}/webhooks/dead_letters");
    for bad in [&[("limit", "0")][..], &[("limit", "1001")], &[("limit", "x")], &[("after", "-1")]] {
        let resp = api.get(&path, bad).await;
        assert_eq!(resp.status, 400, "{bad:?}: {}", resp.body);
    }
    server.server.shutdown().await;
}

/// The real binary with a receiver that refuses connections: 30 deliveries are
/// dead-lettered, and the log gets one summary line per 10 s with the count, not 30 lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_logged_as_one_summary_line_per_interval() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data_dir = temp_data_dir("dead-log");
    let config_path = data_dir.with_extension("toml");
    std::fs::write(
        &config_path,
        format!(
            "host = \"127.0.0.1\"\nport = 0\ndata_dir = {dir:?}\nwebhook_retry_initial_ms = 50\n\
             webhook_retry_max_elapsed = 1\n\
             [[apps]]\nid = \"{APP_ID}\"\nkey = \"{KEY}\"\nsecret = \"{SECRET}\"\n\
             [[apps.webhooks]]\nurl = \"http://127.0.0.1:{closed_port}/hook\"\nevent_types = [\"channel_occupied\"]\n",
            dir = data_dir.display().to_string(),
        ),
    )
    .unwrap();
    let herald = HeraldProcess::start(&["--config", config_path.to_str().unwrap()]);
    let addr = herald.addr;

    let started = std::time::Instant::now();
    let url = format!("ws://{addr}/app/{KEY}?protocol=7&client=js&version=8.4.0");
    let mut a = Client::connect_established(&url).await;
    for i in 0..30 {
        a.subscribe(&format!("lost-{i}")).await;
    }
    let summary = format!("webhook deliveries dead-lettered for app {APP_ID} in the last 10 s");
    let summaries = || -> Vec<String> { herald.log().into_iter().filter(|l| l.contains(&summary)).collect() };
    let counted = || -> u64 {
        summaries()
            .iter()
            .map(|l| l.split(&summary).next().unwrap().split_whitespace().last().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let all_reported = eventually(LONG, || counted() == 30).await;
    let elapsed = started.elapsed();
    assert_eq!(metric(addr, "herald_webhook_dead_lettered_total").await, 30.0);
    herald.stop();
    let lines = summaries();
    assert!(all_reported, "summaries of all 30 dead letters: {:?}", herald.log());
    // One report per 10 s: within `elapsed` there were at most elapsed / 10 s + 1 of them.
    assert!(lines.len() as u64 <= elapsed.as_secs() / 10 + 1, "{lines:?} in {elapsed:?}");
    let all = herald.log();
    assert!(!all.iter().any(|l| l.contains("moved to the dead letters")), "no line per letter: {all:?}");
    let _ = std::fs::remove_dir_all(&data_dir);
    let _ = std::fs::remove_file(&config_path);
}
