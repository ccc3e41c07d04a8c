//! Configuration reload on SIGHUP, against the real binary: apps added, changed and disabled
//! take effect at once, every connection of an app that stays enabled stays open, a file that
//! does not validate changes nothing, and start-up-only keys are reported and kept.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};

use futures_util::future::join_all;
use serde_json::json;
use support::*;

/// `[[apps]]` tables for (id, key, secret, enabled).
fn apps_toml(apps: &[(&str, &str, &str, bool)]) -> String {
    apps.iter()
        .map(|(id, key, secret, enabled)| {
            format!("[[apps]]\nid = \"{id}\"\nkey = \"{key}\"\nsecret = \"{secret}\"\nenabled = {enabled}\n\n")
        })
        .collect()
}

fn write_config(path: &Path, top: &str, apps: &[(&str, &str, &str, bool)]) {
    let text = format!("host = \"127.0.0.1\"\nport = 0\nlog_level = \"info\"\n{top}\n{}", apps_toml(apps));
    std::fs::write(path, text).unwrap();
}

fn config_path(name: &str) -> PathBuf {
    let dir = temp_data_dir(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("herald.toml")
}

fn url(herald: &HeraldProcess, key: &str) -> String {
    format!("ws://{}/app/{key}?protocol=7", herald.addr)
}

fn api(herald: &HeraldProcess, id: &str, key: &str, secret: &str) -> Api {
    Api { addr: herald.addr, app_id: id.into(), key: key.into(), secret: secret.into() }
}

/// Subscribes `client` to a private channel with a signature made with `secret`; returns the reply.
async fn subscribe_signed(client: &mut Client, channel: &str, key: &str, secret: &str) -> serde_json::Value {
    let auth = format!("{key}:{}", hmac_hex(secret, &format!("{}:{channel}", client.socket_id)));
    client.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": channel}})).await;
    client.recv().await
}

async fn connect_many(url: &str, n: usize) -> Vec<Client> {
    let mut out = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(50) {
        let batch = (chunk * 50..n.min((chunk + 1) * 50)).map(|_| Client::connect_established(url));
        out.extend(join_all(batch).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_app_changes_and_no_connection_of_an_enabled_app_closes() {
    let path = config_path("reload-apps");
    let before = [
        ("stay", "stay-key", "stay-secret", true),
        ("rot", "rot-key", "old-secret", true),
        ("off", "off-key", "off-secret", true),
    ];
    write_config(&path, "", &before);
    let herald = HeraldProcess::start(&["--config", path.to_str().unwrap()]);

    let mut stay = connect_many(&url(&herald, "stay-key"), 500).await;
    let mut rot = connect_many(&url(&herald, "rot-key"), 250).await;
    let mut off = connect_many(&url(&herald, "off-key"), 250).await;
    assert_eq!(metric(herald.addr, "herald_connections").await, 1000.0);
    // before: the new app does not exist yet
    let mut ws = Client::connect(&url(&herald, "new-key")).await;
    assert_eq!(closed(&mut ws).await.code, 4001);

    let after = [
        ("stay", "stay-key", "stay-secret", true),
        ("rot", "rot-key", "new-secret", true),
        ("off", "off-key", "off-secret", false),
        ("new", "new-key", "new-secret-2", true),
    ];
    write_config(&path, "", &after);
    herald.hangup();
    herald.wait_log("config reloaded").await;

    // the disabled app's clients are closed with 4003, every one of them
    let codes = join_all(off.iter_mut().map(|c| c.closed())).await;
    assert!(codes.iter().all(|c| c.code == 4003), "{:?}", codes.iter().find(|c| c.code != 4003));
    assert_eq!(metric(herald.addr, "herald_connections").await, 750.0, "no other connection closed");
    // not one connection of the apps that stay enabled closed: each still answers a ping
    for c in stay.iter_mut().chain(rot.iter_mut()) {
        c.assert_alive().await;
    }
    // the rotated secret is enforced on connections opened before the reload, and on the API
    let old = subscribe_signed(&mut rot[0], "private-r", "rot-key", "old-secret").await;
    assert_eq!(old["event"], "pusher:error", "old secret refused: {old}");
    let new = subscribe_signed(&mut rot[0], "private-r", "rot-key", "new-secret").await;
    assert_eq!(new["event"], "pusher_internal:subscription_succeeded", "{new}");
    let body = json!({"name": "e", "channel": "private-r", "data": "{}"});
    assert_eq!(api(&herald, "rot", "rot-key", "old-secret").trigger(body.clone()).await.status, 401);
    assert_eq!(api(&herald, "rot", "rot-key", "new-secret").trigger(body).await.status, 200);
    rot[0].recv_event("e").await;
    // the disabled app refuses new connections and API calls
    let mut ws = Client::connect(&url(&herald, "off-key")).await;
    assert_eq!(closed(&mut ws).await.code, 4003);
    let body = json!({"name": "e", "channel": "c", "data": "{}"});
    assert_eq!(api(&herald, "off", "off-key", "off-secret").trigger(body).await.status, 403);
    // the new app accepts connections and publishes
    let mut fresh = Client::connect_established(&url(&herald, "new-key")).await;
    fresh.subscribe("news").await;
    let body = json!({"name": "hello", "channel": "news", "data": "{}"});
    assert_eq!(api(&herald, "new", "new-key", "new-secret-2").trigger(body).await.status, 200);
    fresh.recv_event("hello").await;
    assert!(reqwest_metrics(&herald).await.contains("herald_config_reloads_total{result=\"ok\"} 1"));
    assert_eq!(metric(herald.addr, "herald_connections").await, 751.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_does_not_validate_changes_nothing_and_names_the_key() {
    let path = config_path("reload-invalid");
    write_config(&path, "", &[("a", "a-key", "a-secret", true)]);
    let herald = HeraldProcess::start(&["--config", path.to_str().unwrap()]);
    let mut client = Client::connect_established(&url(&herald, "a-key")).await;

    let broken = "host = \"127.0.0.1\"\nport = 0\n[[apps]]\nid = \"a\"\nkey = \"a-key\"\nsecret = \"changed\"\nmax_connections = 0\n";
    std::fs::write(&path, broken).unwrap();
    herald.hangup();
    let line = herald.wait_log("config reload failed").await;
    assert!(line.contains("apps[0].max_connections"), "the error names the key: {line}");

    client.assert_alive().await;
    let old = subscribe_signed(&mut client, "private-x", "a-key", "a-secret").await;
    assert_eq!(old["event"], "pusher_internal:subscription_succeeded", "the running secret stays: {old}");
    let text = reqwest_metrics(&herald).await;
    assert!(text.contains("herald_config_reloads_total{result=\"error\"} 1"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_only_keys_are_reported_as_needing_a_restart_and_keep_their_values() {
    let path = config_path("reload-restart-keys");
    write_config(&path, "activity_timeout = 30", &[("a", "a-key", "a-secret", true)]);
    let herald = HeraldProcess::start(&["--config", path.to_str().unwrap()]);

    write_config(&path, "activity_timeout = 45", &[("a", "a-key", "a-secret", true)]);
    herald.hangup();
    let line = herald.wait_log("need a restart").await;
    assert!(line.contains("activity_timeout"), "{line}");

    let mut ws = Client::connect(&url(&herald, "a-key")).await;
    let first = next_json(&mut ws).await.unwrap();
    assert_eq!(data_of(&first)["activity_timeout"], 30, "the running value stays: {first}");
}

/// The whole `/metrics` text of a process.
async fn reqwest_metrics(herald: &HeraldProcess) -> String {
    let resp = raw_http(herald.addr, "GET", "/metrics", b"").await;
    resp.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_gives_an_app_webhook_targets_signed_with_its_current_secret() {
    let rx = WebhookReceiver::start().await;
    let path = config_path("reload-webhooks");
    let data_dir = temp_data_dir("reload-webhooks-data");
    let top = format!("data_dir = \"{}\"\nwebhook_removal_delay_ms = 0", data_dir.display());
    write_config(&path, &top, &[("a", "a-key", "a-secret", true)]);
    let herald = HeraldProcess::start(&["--config", path.to_str().unwrap()]);
    let mut before = Client::connect_established(&url(&herald, "a-key")).await;
    before.subscribe("quiet").await;
    assert!(!data_dir.exists(), "no target yet: no outbox");

    let hooks = format!("[[apps.webhooks]]\nurl = \"{}\"\nevent_types = [\"channel_occupied\"]\n", rx.url());
    let text =
        format!("host = \"127.0.0.1\"\nport = 0\n{top}\n{}{hooks}", apps_toml(&[("a", "a-key", "rotated", true)]));
    std::fs::write(&path, text).unwrap();
    herald.hangup();
    herald.wait_log("config reloaded").await;

    let mut client = Client::connect_established(&url(&herald, "a-key")).await;
    client.subscribe("loud").await;
    let events = rx.wait_events(1, WAIT).await;
    assert_eq!(events[0]["name"], "channel_occupied");
    assert_eq!(events[0]["channel"], "loud");
    let hit = &rx.delivered()[0];
    assert_eq!(hit.headers["x-pusher-key"], "a-key");
    assert_eq!(hit.headers["x-pusher-signature"], hmac_hex("rotated", &hit.body), "signed with the new secret");
}
