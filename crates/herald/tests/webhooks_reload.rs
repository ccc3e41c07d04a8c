//! Webhook configuration replaced while the server runs (`Webhooks::set_apps`, reached through
//! `RunningServer::set_webhooks`, the hook a configuration reload calls): targets added,
//! changed and removed take effect for the next events, without a restart and without losing
//! what was already accepted.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use herald::webhooks::config::{AppWebhooks, WebhookTarget};
use herald_core::events::EventKind;
use serde_json::Value;
use support::*;

/// The standard app's webhooks: one target per URL, each with `types`.
fn hooks(urls: &[String], types: &[&str]) -> HashMap<String, AppWebhooks> {
    let kinds = types.iter().map(|t| EventKind::parse(t).unwrap()).collect();
    let targets = urls
        .iter()
        .map(|u| WebhookTarget { url: u.clone(), event_types: kinds, filter: Default::default(), headers: vec![] })
        .collect();
    HashMap::from([(APP_ID.to_owned(), AppWebhooks { targets, ..Default::default() })])
}

/// `webhook_config` without any target (the short delays and the temp `data_dir` stay).
fn config_without_targets(dir: &str) -> herald::config::Config {
    let mut c = webhook_config("http://127.0.0.1:9/unused", &["channel_occupied"], dir);
    c.webhooks.clear();
    c
}

#[tokio::test]
async fn giving_an_app_targets_starts_deliveries_and_creates_the_data_dir_only_then() {
    let rx = WebhookReceiver::start().await;
    let config = config_without_targets("reload-add");
    let dir = config.data_dir.clone();
    let server = start_with(config).await;
    let mut a = server.client().await;
    a.subscribe("before").await;
    tokio::time::sleep(QUIET).await;
    assert!(!dir.exists(), "no targets: no outbox");

    server.server.set_webhooks(&hooks(&[rx.url()], &["channel_occupied"]));
    assert!(dir.exists(), "the outbox is created with the first target");
    a.subscribe("after").await;
    let events = rx.wait_events(1, WAIT).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(names(&rx.events()), ["channel_occupied:after"], "{events:?}");
    server.server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_unusable_data_dir_when_targets_appear_loses_their_deliveries_counted_not_the_server() {
    let rx = WebhookReceiver::start().await;
    let file = temp_data_dir("reload-not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let mut config = config_without_targets("unused");
    config.data_dir = file.join("sub");
    let server = start_with(config).await;

    server.server.set_webhooks(&hooks(&[rx.url()], &["channel_occupied"]));
    let mut a = server.client().await;
    a.subscribe("one").await;
    a.subscribe("two").await;
    let lost =
        eventually_async(WAIT, || async { metric(server.addr, "herald_webhook_deliveries_lost_total").await >= 2.0 });
    assert!(lost.await, "the deliveries are counted as lost");
    a.subscribe("three").await; // the server still serves
    assert!(rx.hits().is_empty());
    server.server.shutdown().await;
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn changing_a_target_url_moves_the_next_events_to_the_new_url() {
    let (old, new) = (WebhookReceiver::start().await, WebhookReceiver::start().await);
    let server = start_with(webhook_config(&old.url(), &["channel_occupied"], "reload-url")).await;
    let mut a = server.client().await;
    a.subscribe("one").await;
    old.wait_events(1, WAIT).await;

    server.server.set_webhooks(&hooks(&[new.url()], &["channel_occupied"]));
    a.subscribe("two").await;
    new.wait_events(1, WAIT).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(names(&old.events()), ["channel_occupied:one"]);
    assert_eq!(names(&new.events()), ["channel_occupied:two"]);
    assert!(new.delivered().iter().all(|h| h.headers.contains_key("x-pusher-signature")));
    server.server.shutdown().await;
}

#[tokio::test]
async fn removing_all_targets_stops_deliveries() {
    let rx = WebhookReceiver::start().await;
    let server = start_with(webhook_config(&rx.url(), &["channel_occupied", "channel_vacated"], "reload-rm")).await;
    let mut a = server.client().await;
    a.subscribe("one").await;
    rx.wait_events(1, WAIT).await;

    server.server.set_webhooks(&HashMap::new());
    let mut b = server.client().await;
    b.subscribe("two").await;
    drop(b); // "two" is vacated: nothing either
    tokio::time::sleep(Duration::from_millis(800)).await; // past the 300 ms removal delay
    assert_eq!(names(&rx.events()), ["channel_occupied:one"]);
    server.server.shutdown().await;
}

#[tokio::test]
async fn changing_event_types_filters_the_next_events() {
    let rx = WebhookReceiver::start().await;
    let server = start_with(webhook_config(&rx.url(), &["channel_occupied"], "reload-types")).await;
    let mut a = server.client().await;
    a.subscribe("one").await;
    rx.wait_events(1, WAIT).await;

    server.server.set_webhooks(&hooks(&[rx.url()], &["cache_miss"]));
    a.subscribe("two").await;
    a.subscribe("cache-three").await;
    rx.wait_events(2, WAIT).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(names(&rx.events()), ["channel_occupied:one", "cache_miss:cache-three"]);
    server.server.shutdown().await;
}

#[tokio::test]
async fn a_removed_targets_pending_deliveries_resume_when_it_returns() {
    let rx = WebhookReceiver::start().await;
    rx.set_status(500);
    let server = start_with(webhook_config(&rx.url(), &["channel_occupied"], "reload-resume")).await;
    let mut a = server.client().await;
    a.subscribe("one").await;
    a.subscribe("two").await;
    assert!(eventually(WAIT, || !rx.hits().is_empty()).await, "attempted");

    server.server.set_webhooks(&HashMap::new());
    rx.set_status(200);
    tokio::time::sleep(QUIET).await;
    assert!(rx.delivered().is_empty(), "a removed target is not sent to");

    server.server.set_webhooks(&hooks(&[rx.url()], &["channel_occupied"]));
    let events = rx.wait_events(2, WAIT).await;
    assert_eq!(names(&events), ["channel_occupied:one", "channel_occupied:two"], "resumed, in order");
    server.server.shutdown().await;
}

#[tokio::test]
async fn a_removed_targets_pending_deliveries_are_dead_lettered_after_the_retry_window() {
    let rx = WebhookReceiver::start().await;
    rx.set_status(500);
    let mut config = webhook_config(&rx.url(), &["channel_occupied"], "reload-expire");
    config.webhook_retry_max_elapsed = 1;
    let server = start_with(config).await;
    let mut a = server.client().await;
    a.subscribe("one").await;
    assert!(eventually(WAIT, || !rx.hits().is_empty()).await, "attempted");
    server.server.set_webhooks(&HashMap::new());

    let api = server.api();
    let found = eventually_async(WAIT, || async { !dead_letters(&api).await.is_empty() }).await;
    assert!(found, "dead-lettered within {WAIT:?}");
    let letters = dead_letters(&api).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["last_error"], "target removed");
    assert_eq!(letters[0]["url"], rx.url());
    assert_eq!(names(letters[0]["events"].as_array().unwrap()), ["channel_occupied:one"]);
    server.server.shutdown().await;
}

/// Subscribes `c` to `{prefix}-0` … `{prefix}-{n-1}`, one after the other.
async fn flood(c: &mut Client, prefix: &str, n: usize) {
    for i in 0..n {
        c.subscribe(&format!("{prefix}-{i}")).await;
    }
}

/// The standard app's first page of dead letters.
async fn dead_letters(api: &Api) -> Vec<Value> {
    let page = api.get(&format!("/apps/{APP_ID}/webhooks/dead_letters"), &[]).await.json();
    page["dead_letters"].as_array().cloned().unwrap_or_default()
}

/// The first occurrence of each `prefix` channel in `events`, as the channel's number.
fn first_seen(events: &[Value], prefix: &str) -> Vec<usize> {
    let mut seen = HashSet::new();
    events
        .iter()
        .filter_map(|e| e["channel"].as_str()?.strip_prefix(prefix)?.parse::<usize>().ok())
        .filter(|n| seen.insert(*n))
        .collect()
}

#[tokio::test]
async fn set_apps_during_a_flood_loses_nothing_accepted() {
    const PER_CLIENT: usize = 300;
    let (a_rx, b_rx) = (WebhookReceiver::start().await, WebhookReceiver::start().await);
    let server = start_with(webhook_config(&a_rx.url(), &["channel_occupied"], "reload-flood")).await;
    let (mut c1, mut c2) = (server.client().await, server.client().await);
    let toggle = async {
        for i in 0..30 {
            let url = if i % 2 == 0 { b_rx.url() } else { a_rx.url() };
            server.server.set_webhooks(&hooks(&[url], &["channel_occupied"]));
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    };
    tokio::join!(flood(&mut c1, "x", PER_CLIENT), flood(&mut c2, "y", PER_CLIENT), toggle);
    // Both configured: what waits in either's outbox is delivered.
    server.server.set_webhooks(&hooks(&[a_rx.url(), b_rx.url()], &["channel_occupied"]));

    let covered = || {
        let mut all: Vec<Value> = a_rx.events();
        all.extend(b_rx.events());
        let got: HashSet<String> = all.iter().filter_map(|e| e["channel"].as_str().map(str::to_owned)).collect();
        got
    };
    let want: HashSet<String> =
        ["x", "y"].iter().flat_map(|p| (0..PER_CLIENT).map(move |i| format!("{p}-{i}"))).collect();
    let ok = eventually(Duration::from_secs(20), || covered().is_superset(&want)).await;
    let got = covered();
    let missing: Vec<&String> = want.difference(&got).collect();
    assert!(ok, "{} of {} events never arrived: {missing:?}", missing.len(), want.len());
    assert!(!a_rx.events().is_empty() && !b_rx.events().is_empty(), "the changes happened during the flood");
    for rx in [&a_rx, &b_rx] {
        for prefix in ["x-", "y-"] {
            let order = first_seen(&rx.events(), prefix);
            assert!(order.windows(2).all(|w| w[0] < w[1]), "{prefix} out of order at one target: {order:?}");
        }
    }
    server.server.shutdown().await;
}
