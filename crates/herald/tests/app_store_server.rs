//! A server whose apps live in a SQL table (PostgreSQL and MariaDB): rows written with the
//! databases' own clients (never through herald) take effect on real sockets — a new row on its
//! first connection, a disabled or changed row within `cache_ttl` — a bad row costs only its own
//! app, and an outage of the database (a private server the test stops) costs nothing that was
//! already loaded.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::time::Duration;

use herald::config::app_store::AppStoreConfig;
use herald::config::Config;
use serde_json::json;
use support::*;

/// A config serving the apps of `table`, re-read every `ttl`.
fn store_config(table: &SqlTable, ttl: Duration) -> Config {
    let mut c = test_config();
    c.apps = Vec::new();
    c.app_store = AppStoreConfig::Sql(herald::config::app_store::SqlStoreConfig { cache_ttl: ttl, ..table.config() });
    c
}

/// Inserts an app row with plain SQL (the table must exist).
fn insert(table: &SqlTable, id: &str, key: &str, secret: &str, settings: &str) {
    let k = table.db.q("key");
    table.exec(&format!(
        "INSERT INTO {{t}} (id, {k}, secret, settings) VALUES ('{id}', '{key}', '{secret}', '{settings}')"
    ));
}

fn api(server: &TestServer, id: &str, key: &str, secret: &str) -> Api {
    Api { addr: server.addr, app_id: id.into(), key: key.into(), secret: secret.into() }
}

async fn ready_text(server: &TestServer) -> (u16, String) {
    let r = raw_http(server.addr, "GET", "/ready", b"").await;
    (r.status, r.body)
}

/// Publishes `event` on `channel` through the API of app `id` and waits for `client` to get it.
async fn publish_reaches(server: &TestServer, creds: (&str, &str, &str), client: &mut Client, event: &str) {
    let (id, key, secret) = creds;
    let body = json!({"name": event, "channel": "news", "data": "{}"});
    assert_eq!(api(server, id, key, secret).trigger(body).await.status, 200);
    client.recv_event(event).await;
}

#[tokio::test]
async fn a_row_inserted_with_sql_serves_its_first_connection_and_publish() {
    for db in Db::ALL {
        let table = SqlTable::shared(db, "first_conn");
        // a long TTL: only the immediate lookup of the unknown key can find the new row
        let server = start_with(store_config(&table, Duration::from_secs(300))).await;
        assert!(table.exists(), "{db:?}: herald created the table");
        insert(&table, "shop", "shop-key", "shop-secret", "{\"enable_client_messages\": true}");

        let mut client = Client::connect_established(&server.ws_url("shop-key")).await;
        client.subscribe("news").await;
        publish_reaches(&server, ("shop", "shop-key", "shop-secret"), &mut client, "first").await;
        // and by id first: another new row, published to before anyone connects
        insert(&table, "blog", "blog-key", "blog-secret", "{}");
        let body = json!({"name": "e", "channel": "c", "data": "{}"});
        assert_eq!(api(&server, "blog", "blog-key", "blog-secret").trigger(body).await.status, 200, "{db:?}");
        server.server.shutdown().await;
    }
}

#[tokio::test]
async fn a_disabled_or_changed_row_takes_effect_within_cache_ttl() {
    for db in Db::ALL {
        let table = SqlTable::shared(db, "changes");
        let server = start_with(store_config(&table, Duration::from_secs(1))).await;
        insert(&table, "a", "a-key", "a-secret", "{}");
        insert(&table, "b", "b-key", "b-secret", "{}");
        let mut a = Client::connect_established(&server.ws_url("a-key")).await;
        let mut b = Client::connect_established(&server.ws_url("b-key")).await;
        b.subscribe("news").await;

        table.exec("UPDATE {t} SET enabled = false WHERE id = 'a'");
        table.exec("UPDATE {t} SET secret = 'b-rotated' WHERE id = 'b'");
        let closed = tokio::time::timeout(Duration::from_secs(5), a.closed()).await.expect("closed within the TTL");
        assert_eq!(closed.code, 4003, "{db:?}");
        let mut again = Client::connect(&server.ws_url("a-key")).await;
        assert_eq!(closed_code(&mut again).await, 4003, "{db:?}: a new connection is refused");
        let body = json!({"name": "e", "channel": "c", "data": "{}"});
        assert_eq!(api(&server, "a", "a-key", "a-secret").trigger(body).await.status, 403, "{db:?}");

        // the rotated secret: the old one is refused once the refresh ran, the new one works
        let old = api(&server, "b", "b-key", "b-secret");
        assert!(wait_status(&old, 401).await, "{db:?}: the old secret is refused within the TTL");
        publish_reaches(&server, ("b", "b-key", "b-rotated"), &mut b, "rotated").await;
        b.assert_alive().await;
        server.server.shutdown().await;
    }
}

/// Retries a publish until it answers `status` (at most 5 s).
async fn wait_status(api: &Api, status: u16) -> bool {
    for _ in 0..100 {
        let body = json!({"name": "e", "channel": "c", "data": "{}"});
        if api.trigger(body).await.status == status {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn closed_code(ws: &mut Ws) -> u16 {
    closed(ws).await.code
}

#[tokio::test]
async fn a_row_with_an_invalid_setting_costs_only_its_own_app() {
    for db in Db::ALL {
        let table = SqlTable::shared(db, "bad_row");
        let server = start_with(store_config(&table, Duration::from_secs(300))).await;
        insert(&table, "bad", "bad-key", "s", "{\"max_connections\": \"many\"}");
        insert(&table, "good", "good-key", "s", "{}");
        let mut bad = Client::connect(&server.ws_url("bad-key")).await;
        assert_eq!(closed_code(&mut bad).await, 4001, "{db:?}: an unusable app is unknown");
        let mut good = Client::connect_established(&server.ws_url("good-key")).await;
        good.assert_alive().await;
        server.server.shutdown().await;
    }
}

/// A private database server a test may stop and start again.
trait PrivateDb {
    fn stop(&mut self);
    fn start_again(&mut self);
}

impl PrivateDb for PrivatePostgres {
    fn stop(&mut self) {
        PrivatePostgres::stop(self);
    }
    fn start_again(&mut self) {
        PrivatePostgres::start_again(self);
    }
}

impl PrivateDb for PrivateMariadb {
    fn stop(&mut self) {
        PrivateMariadb::stop(self);
    }
    fn start_again(&mut self) {
        PrivateMariadb::start_again(self);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_postgres_costs_nothing_already_loaded_and_recovery_needs_no_operator() {
    let mut pg = PrivatePostgres::start();
    let url = pg.url();
    outage_script(Db::Postgres, url, &mut pg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_mariadb_costs_nothing_already_loaded_and_recovery_needs_no_operator() {
    let mut db = PrivateMariadb::start();
    let url = db.url();
    outage_script(Db::Mysql, url, &mut db).await;
}

/// Connected clients of a loaded app keep receiving while the database is down, new
/// connections of that app are admitted, unknown keys are refused fast, `/ready` says so, and
/// everything comes back on its own.
async fn outage_script(db: Db, url: String, database: &mut impl PrivateDb) {
    let table = SqlTable::on(db, url, "outage_server");
    let server = start_with(store_config(&table, Duration::from_secs(1))).await;
    insert(&table, "shop", "shop-key", "shop-secret", "{}");
    let mut client = Client::connect_established(&server.ws_url("shop-key")).await;
    client.subscribe("news").await;
    assert_eq!(ready_text(&server).await, (200, "ready\n".to_owned()));

    tokio::task::block_in_place(|| database.stop());
    // the next refresh fails (within the 2 s a connection is waited for), the cached app keeps
    // working
    let mut body = String::new();
    for _ in 0..100 {
        let (status, text) = ready_text(&server).await;
        assert_eq!(status, 200, "{text}");
        body = text;
        if body != "ready\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(body.starts_with("degraded: app store unreachable"), "{body}");
    publish_reaches(&server, ("shop", "shop-key", "shop-secret"), &mut client, "during-outage").await;
    let mut second = Client::connect_established(&server.ws_url("shop-key")).await;
    second.assert_alive().await;
    let started = std::time::Instant::now();
    let mut unknown = Client::connect(&server.ws_url("new-key")).await;
    assert_eq!(closed_code(&mut unknown).await, 4001, "an unknown key is refused while the store is down");
    assert!(started.elapsed() < Duration::from_secs(5), "refused in {:?}", started.elapsed());

    tokio::task::block_in_place(|| database.start_again());
    let ok = async {
        for _ in 0..150 {
            if ready_text(&server).await.1 == "ready\n" {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(ok.await, "ready again once the database is back");
    insert(&table, "new", "new-key", "new-secret", "{}");
    // the negative cache for "new-key" is short
    tokio::time::sleep(Duration::from_millis(2100)).await;
    Client::connect_established(&server.ws_url("new-key")).await.assert_alive().await;
    client.assert_alive().await;
    server.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_while_its_database_is_down_becomes_ready_when_it_returns() {
    let mut db = PrivateMariadb::start();
    let table = SqlTable::on(Db::Mysql, db.url(), "late_start");
    table.store().ensure_table().await.unwrap();
    insert(&table, "shop", "shop-key", "shop-secret", "{}");
    tokio::task::block_in_place(|| db.stop());

    let server = start_with(store_config(&table, Duration::from_secs(30))).await;
    let (status, body) = ready_text(&server).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("app store unreachable"), "{body}");

    tokio::task::block_in_place(|| db.start_again());
    let mut ready = false;
    for _ in 0..150 {
        if ready_text(&server).await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "ready once the database answers");
    Client::connect_established(&server.ws_url("shop-key")).await.assert_alive().await;
    server.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_redis_see_the_same_app_changes_from_postgres() {
    let redis = Redis::start();
    let table = SqlTable::shared(Db::Postgres, "cluster");
    let node = |redis: &Redis| {
        let mut c = node_config(redis);
        c.apps = Vec::new();
        c.app_store = store_config(&table, Duration::from_secs(1)).app_store;
        c
    };
    let a = start_with(node(&redis)).await;
    let b = start_with(node(&redis)).await;
    insert(&table, "shop", "shop-key", "shop-secret", "{}");
    let mut on_a = Client::connect_established(&a.ws_url("shop-key")).await;
    let mut on_b = Client::connect_established(&b.ws_url("shop-key")).await;
    on_a.subscribe("news").await;
    on_b.subscribe("news").await;
    // published through node B, received on both
    let body = json!({"name": "hello", "channel": "news", "data": "{}"});
    assert_eq!(api(&b, "shop", "shop-key", "shop-secret").trigger(body).await.status, 200);
    on_a.recv_event("hello").await;
    on_b.recv_event("hello").await;

    table.exec("UPDATE {t} SET enabled = false WHERE id = 'shop'");
    for client in [&mut on_a, &mut on_b] {
        let closed = tokio::time::timeout(Duration::from_secs(5), client.closed()).await.expect("within the TTL");
        assert_eq!(closed.code, 4003);
    }
    a.server.shutdown().await;
    b.server.shutdown().await;
}

#[tokio::test]
async fn a_rows_webhook_settings_deliver_signed_with_its_secret() {
    for db in Db::ALL {
        let rx = WebhookReceiver::start().await;
        let table = SqlTable::shared(db, "row_hooks");
        let mut config = store_config(&table, Duration::from_secs(300));
        config.data_dir = temp_data_dir(&format!("row-hooks-{}", db.name()));
        config.webhook_removal_delay_ms = 0;
        let server = start_with(config).await;
        let settings =
            format!("{{\"webhooks\": [{{\"url\": \"{}\", \"event_types\": [\"channel_occupied\"]}}]}}", rx.url());
        insert(&table, "hooked", "hooked-key", "hooked-secret", &settings);

        let mut client = Client::connect_established(&server.ws_url("hooked-key")).await;
        client.subscribe("orders").await;
        let events = rx.wait_events(1, WAIT).await;
        assert_eq!(events[0]["channel"], "orders", "{db:?}");
        let hit = &rx.delivered()[0];
        assert_eq!(hit.headers["x-pusher-signature"], hmac_hex("hooked-secret", &hit.body), "{db:?}");
        server.server.shutdown().await;
    }
}
