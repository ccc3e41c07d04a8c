//! The SQL app store while its database goes away and comes back: a lookup fails fast with
//! `StoreError::Unavailable` (never hangs), a store set up while the database is down works
//! once it is back, and an existing store recovers on its own. Each test starts a private
//! server on a free port (support/sql_servers.rs) and stops it; the shared servers are never
//! touched.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod support;

use std::time::{Duration, Instant};

use herald::apps::row::AppRow;
use herald::apps::sql::{SqlStore, StoreError};
use support::*;

/// A lookup against a stopped database must fail within this (2 s to get a connection, plus
/// slack for a loaded machine).
const FAIL_FAST: Duration = Duration::from_secs(5);

/// Waits until `store` finds the app again after a restart.
async fn recovers(store: &SqlStore) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match store.by_key("shop-key").await {
            Ok(Some(row)) => {
                assert_eq!(row.id, "shop");
                return;
            }
            other if Instant::now() > deadline => panic!("the store did not recover: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Stop, fail fast, start again on the same port, work again: the same script for both.
async fn outage_script(db: Db, url: String, stop: impl FnOnce(), start: impl FnOnce()) {
    let t = SqlTable::on(db, url, "outage");
    let store = t.store();
    store.ensure_table().await.unwrap();
    let row =
        AppRow { id: "shop".into(), key: "shop-key".into(), secret: "s".into(), enabled: true, settings: "{}".into() };
    store.insert(&row).await.unwrap();
    assert_eq!(store.by_key("shop-key").await.unwrap().unwrap().id, "shop");

    stop();
    let started = Instant::now();
    let err = store.by_key("shop-key").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{db:?}: {err}");
    assert!(started.elapsed() < FAIL_FAST, "{db:?}: took {:?}", started.elapsed());

    // Set up while the database is down: no error until it is used.
    let late = t.store();
    let started = Instant::now();
    assert!(matches!(late.load_all().await, Err(StoreError::Unavailable(_))));
    assert!(started.elapsed() < FAIL_FAST, "{db:?}: took {:?}", started.elapsed());

    start();
    recovers(&store).await;
    recovers(&late).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_fails_fast_and_the_store_recovers_on_the_same_port() {
    let pg = std::sync::Arc::new(std::sync::Mutex::new(PrivatePostgres::start()));
    let url = pg.lock().unwrap().url();
    let (a, b) = (pg.clone(), pg.clone());
    outage_script(Db::Postgres, url, move || a.lock().unwrap().stop(), move || b.lock().unwrap().start_again()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_outage_fails_fast_and_the_store_recovers_on_the_same_port() {
    let my = std::sync::Arc::new(std::sync::Mutex::new(PrivateMariadb::start()));
    let url = my.lock().unwrap().url();
    let (a, b) = (my.clone(), my.clone());
    outage_script(Db::Mysql, url, move || a.lock().unwrap().stop(), move || b.lock().unwrap().start_again()).await;
}
