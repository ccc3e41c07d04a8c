//! The SQL app store against real PostgreSQL and MariaDB/MySQL servers (the shared test
//! servers; scripts/test.sh makes sure they run): the table herald creates, rows written with
//! plain SQL through the databases' own clients and read back by `SqlStore`, settings turned
//! into app limits and webhooks by the `[[apps]]` rules, one bad row not spoiling the others,
//! the validated writes, and the documented schema and example rows (docs/OPERATIONS.md).
//! Every test runs on both databases, each on a table of its own.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use herald::apps::row::{app_from_row, AppRow};
use herald::apps::sql::StoreError;
use serde_json::{json, Value};
use support::*;

/// Inserts a row with plain SQL (the database's client, not `SqlStore`).
fn insert(t: &SqlTable, id: &str, key: &str, enabled: bool, settings: &Value) {
    let k = t.db.q("key");
    t.exec(&format!(
        "INSERT INTO {{t}} (id, {k}, secret, enabled, settings) VALUES ('{id}', '{key}', 'secret-{id}', {enabled}, '{settings}')"
    ));
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[tokio::test]
async fn ensure_table_is_idempotent_and_gives_the_documented_defaults() {
    for db in Db::ALL {
        let t = SqlTable::shared(db, "ensure");
        let store = t.store();
        assert!(!t.exists());
        store.ensure_table().await.unwrap();
        store.ensure_table().await.unwrap();
        assert!(t.exists(), "{db:?}");
        // Only the required columns: enabled defaults to true, settings to {}.
        t.exec(&format!("INSERT INTO {{t}} (id, {}, secret) VALUES ('a', 'a-key', 's')", db.q("key")));
        let rows = store.load_all().await.unwrap();
        assert_eq!(rows.len(), 1, "{db:?}");
        assert!(rows[0].enabled, "{db:?}");
        assert_eq!(json_of(&rows[0].settings), json!({}), "{db:?}");
        // Inserting through the store after a second ensure still works.
        store.ensure_table().await.unwrap();
        assert_eq!(store.load_all().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn concurrent_ensure_table_calls_all_succeed() {
    for db in Db::ALL {
        let t = SqlTable::shared(db, "ensure_race");
        let stores: Vec<_> = (0..4).map(|_| t.store()).collect();
        let results = futures_util::future::join_all(stores.iter().map(|s| s.ensure_table())).await;
        for r in results {
            r.unwrap_or_else(|e| panic!("{db:?}: {e}"));
        }
        assert!(t.exists());
    }
}

#[tokio::test]
async fn rows_inserted_with_plain_sql_are_read_by_load_all_by_key_and_by_id() {
    for db in Db::ALL {
        let t = SqlTable::shared(db, "read");
        let store = t.store();
        store.ensure_table().await.unwrap();
        insert(&t, "shop", "shop-key", true, &json!({"max_connections": 100}));
        insert(&t, "blog", "blog-key", false, &json!({}));

        let all = store.load_all().await.unwrap();
        let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["blog", "shop"], "{db:?}: ordered by id");
        assert!(!all[0].enabled && all[1].enabled, "{db:?}");

        let shop = store.by_key("shop-key").await.unwrap().unwrap();
        assert_eq!(
            (shop.id.as_str(), shop.key.as_str(), shop.secret.as_str(), shop.enabled),
            ("shop", "shop-key", "secret-shop", true)
        );
        assert_eq!(json_of(&shop.settings), json!({"max_connections": 100}), "{db:?}");
        assert_eq!(store.by_id("blog").await.unwrap().unwrap().key, "blog-key");
        assert_eq!(store.by_key("nope").await.unwrap(), None);
        assert_eq!(store.by_id("nope").await.unwrap(), None);
        assert_eq!(store.by_key("SHOP-KEY").await.unwrap(), None, "{db:?}: keys are case-sensitive");
    }
}

#[tokio::test]
async fn settings_json_becomes_app_limits_and_webhooks() {
    for db in Db::ALL {
        let t = SqlTable::shared(db, "settings");
        let store = t.store();
        store.ensure_table().await.unwrap();
        insert(
            &t,
            "shop",
            "shop-key",
            true,
            &json!({
                "enable_client_messages": true,
                "max_connections": 100,
                "max_presence_members_per_channel": 50,
                "batch_webhooks": true,
                "webhooks": [{
                    "url": "https://hooks.example.com/shop",
                    "event_types": ["channel_occupied", "member_added"],
                    "filter": {"channel_name_ends_with": "-orders"}
                }]
            }),
        );
        let row = store.by_id("shop").await.unwrap().unwrap();
        let (app, hooks) = app_from_row(&row).unwrap();
        assert_eq!((app.id.as_str(), app.key.as_str(), app.secret.as_str()), ("shop", "shop-key", "secret-shop"));
        assert!(app.limits.enabled && app.limits.enable_client_messages, "{db:?}");
        assert_eq!(app.limits.max_connections, Some(100));
        assert_eq!(app.limits.max_presence_members_per_channel, 50);
        assert_eq!(app.limits.max_event_payload_in_kb, 10, "{db:?}: unset keys keep their default");
        assert!(hooks.batch);
        assert_eq!(hooks.targets.len(), 1);
        assert_eq!(hooks.targets[0].url, "https://hooks.example.com/shop");
        assert_eq!(hooks.targets[0].filter.ends_with.as_deref(), Some("-orders"));
    }
}

#[tokio::test]
async fn an_invalid_settings_key_fails_only_its_row() {
    for db in Db::ALL {
        let t = SqlTable::shared(db, "bad_row");
        let store = t.store();
        store.ensure_table().await.unwrap();
        insert(&t, "a", "a-key", true, &json!({"max_connections": 5}));
        insert(&t, "shop", "shop-key", true, &json!({"max_conections": 5}));
        insert(&t, "typed", "typed-key", true, &json!({"max_connections": "lots"}));
        insert(&t, "z", "z-key", true, &json!({}));

        let rows = store.load_all().await.unwrap();
        assert_eq!(rows.len(), 4, "{db:?}: every row is read");
        let results: Vec<_> = rows.iter().map(|r| (r.id.clone(), app_from_row(r).map_err(|e| e.to_string()))).collect();
        for (id, result) in &results {
            match id.as_str() {
                "shop" => {
                    let err = result.as_ref().unwrap_err();
                    assert!(err.starts_with("app \"shop\": settings.max_conections: unknown field"), "{db:?}: {err}");
                }
                "typed" => {
                    let err = result.as_ref().unwrap_err();
                    assert!(err.starts_with("app \"typed\": settings.max_connections: invalid type"), "{db:?}: {err}");
                }
                _ => assert!(result.is_ok(), "{db:?}: {id}: {result:?}"),
            }
        }
    }
}

#[tokio::test]
async fn a_hand_made_table_with_text_settings_and_an_integer_flag_reads_the_same() {
    for db in Db::ALL {
        let t = SqlTable::shared(db, "hand_made");
        let k = db.q("key");
        // No timestamps, TEXT settings (nullable), an integer flag; MySQL with its default,
        // case-insensitive collation.
        let int = if db == Db::Postgres { "SMALLINT" } else { "TINYINT" };
        t.exec(&format!(
            "CREATE TABLE {{t}} (id VARCHAR(64) PRIMARY KEY, {k} VARCHAR(64) NOT NULL, secret VARCHAR(64) NOT NULL, \
             enabled {int} NOT NULL, settings TEXT)"
        ));
        t.exec(&format!(
            "INSERT INTO {{t}} (id, {k}, secret, enabled, settings) VALUES \
             ('on', 'on-key', 's1', 1, '{{\"force_tls\": true}}'), ('off', 'off-key', 's2', 0, NULL)"
        ));
        let store = t.store();
        store.ensure_table().await.unwrap(); // an existing table is left as it is
        let on = store.by_key("on-key").await.unwrap().unwrap();
        assert!(on.enabled && app_from_row(&on).unwrap().0.limits.force_tls, "{db:?}");
        let off = store.by_id("off").await.unwrap().unwrap();
        assert!(!off.enabled, "{db:?}");
        assert_eq!(json_of(&off.settings), json!({}), "{db:?}: NULL settings read as {{}}");
        assert_eq!(store.by_key("ON-KEY").await.unwrap(), None, "{db:?}: exact match despite the collation");
    }
}

/// The ```sql blocks of the section of docs/OPERATIONS.md that starts at `heading`.
fn doc_sql_blocks(heading: &str) -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/OPERATIONS.md")).unwrap();
    let section = doc.split(heading).nth(1).unwrap_or_else(|| panic!("{heading} in OPERATIONS.md"));
    let section = section.split("\n### ").next().unwrap();
    section.split("```sql\n").skip(1).map(|b| b.split("```").next().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn the_documented_schema_and_example_rows_load() {
    let creates = doc_sql_blocks("### The table");
    let inserts = doc_sql_blocks("### The settings");
    assert_eq!((creates.len(), inserts.len()), (2, 2), "one CREATE and one INSERT per database");
    for (i, db) in Db::ALL.into_iter().enumerate() {
        let t = SqlTable::shared(db, "documented");
        t.exec(&creates[i].replace("herald_apps", "{t}"));
        t.exec(&inserts[i].replace("herald_apps", "{t}"));
        let store = t.store();
        store.ensure_table().await.unwrap();
        let row = store.by_id("shop").await.unwrap().unwrap();
        let (app, hooks) = app_from_row(&row).unwrap();
        assert_eq!(app.key, "shop-key");
        assert!(app.limits.enabled && app.limits.enable_client_messages, "{db:?}");
        assert_eq!(app.limits.max_connections, Some(1000));
        assert_eq!(hooks.targets.len(), 1, "{db:?}");
    }
}

fn row(id: &str, key: &str, settings: Value) -> AppRow {
    AppRow { id: id.into(), key: key.into(), secret: "s3cret".into(), enabled: true, settings: settings.to_string() }
}

#[tokio::test]
async fn writes_are_validated_and_keep_ids_and_keys_unique() {
    for db in Db::ALL {
        let t = SqlTable::shared(db, "writes");
        let store = t.store();
        store.ensure_table().await.unwrap();
        store.insert(&row("shop", "shop-key", json!({"max_connections": 10}))).await.unwrap();

        let dup_id = store.insert(&row("shop", "other-key", json!({}))).await.unwrap_err();
        assert!(matches!(dup_id, StoreError::Conflict(_)), "{db:?}: {dup_id}");
        let dup_key = store.insert(&row("other", "shop-key", json!({}))).await.unwrap_err();
        assert!(matches!(dup_key, StoreError::Conflict(_)), "{db:?}: {dup_key}");
        let invalid = store.insert(&row("bad", "bad-key", json!({"max_connections": 0}))).await.unwrap_err();
        assert!(matches!(invalid, StoreError::Invalid(_)), "{db:?}: {invalid}");
        assert!(t.rows("SELECT id FROM {t} WHERE id = 'bad'").is_empty(), "{db:?}: nothing written");

        let changed = store
            .set("shop", &[("max_connections".into(), json!(20)), ("force_tls".into(), json!(true))])
            .await
            .unwrap();
        assert_eq!(json_of(&changed.settings), json!({"max_connections": 20, "force_tls": true}));
        let stored = t.rows("SELECT settings FROM {t} WHERE id = 'shop'");
        assert_eq!(json_of(&stored[0][0]), json!({"max_connections": 20, "force_tls": true}), "{db:?}");

        let refused = store.set("shop", &[("max_connections".into(), json!("lots"))]).await.unwrap_err();
        assert!(refused.to_string().starts_with("app \"shop\": settings.max_connections"), "{db:?}: {refused}");
        let stored = t.rows("SELECT settings FROM {t} WHERE id = 'shop'");
        assert_eq!(json_of(&stored[0][0])["max_connections"], 20, "{db:?}: unchanged");
        assert!(matches!(store.set("nope", &[("force_tls".into(), json!(true))]).await, Err(StoreError::NotFound(_))));

        store.disable("shop").await.unwrap();
        assert!(matches!(t.rows("SELECT enabled FROM {t} WHERE id = 'shop'")[0][0].as_str(), "f" | "0"), "{db:?}");
        store.enable("shop").await.unwrap();
        assert!(matches!(t.rows("SELECT enabled FROM {t} WHERE id = 'shop'")[0][0].as_str(), "t" | "1"), "{db:?}");
        assert!(matches!(store.disable("nope").await, Err(StoreError::NotFound(_))));

        store.remove("shop").await.unwrap();
        assert!(t.rows("SELECT id FROM {t}").is_empty(), "{db:?}");
        assert!(matches!(store.remove("shop").await, Err(StoreError::NotFound(_))));
    }
}

#[tokio::test]
async fn a_missing_table_is_reported_as_such() {
    for db in Db::ALL {
        let t = SqlTable::shared(db, "missing");
        let err = t.store().load_all().await.unwrap_err();
        assert!(matches!(err, StoreError::MissingTable(_)), "{db:?}: {err}");
        assert!(err.to_string().contains(&t.name), "{err}");
    }
}
