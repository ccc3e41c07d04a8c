//! The flusher against a running server (port 0): quota crossings reach the `QuotaObserver`
//! once per level, and the over-quota flag follows the count.

use std::sync::Arc;
use std::time::Duration;

use herald_core::app::{App, AppLimits};
use parking_lot::Mutex;

use super::{QuotaKind, QuotaLevel, QuotaObserver};
use crate::config::Config;

type Crossing = (String, QuotaKind, QuotaLevel, u64, u64);

/// Records every crossing it is told about.
#[derive(Default)]
struct Recorder(Mutex<Vec<Crossing>>);

impl QuotaObserver for Recorder {
    fn crossed(&self, app_id: &str, kind: QuotaKind, level: QuotaLevel, used: u64, limit: u64) {
        self.0.lock().push((app_id.to_owned(), kind, level, used, limit));
    }
}

async fn flushed(recorder: &Recorder, n: usize) -> Vec<Crossing> {
    for _ in 0..40 {
        if recorder.0.lock().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    recorder.0.lock().clone()
}

#[tokio::test]
async fn crossing_80_and_100_percent_of_the_message_quota_is_reported_once_each() {
    let limits = AppLimits { max_messages_per_day: Some(10), ..AppLimits::default() };
    let app = App { id: "quota".into(), key: "quota-key".into(), secret: "s".into(), limits };
    let data_dir = std::env::temp_dir().join(format!("herald-usage-unit-{}", std::process::id()));
    let config =
        Config { host: "127.0.0.1".into(), port: 0, apps: vec![app], data_dir: data_dir.clone(), ..Config::default() };
    let server = crate::start(config).await.expect("starts");
    let state = server.state().clone();
    let recorder = Arc::new(Recorder::default());
    assert!(state.quota_observer.set(recorder.clone()).is_ok());
    let ns = state.hub.namespace("quota");

    for _ in 0..8 {
        state.usage.count_request("quota");
    }
    let seen = flushed(&recorder, 1).await;
    assert_eq!(seen, [("quota".to_owned(), QuotaKind::Messages, QuotaLevel::Warning80, 8, 10)]);
    assert!(!ns.over_message_quota());

    state.usage.count_request("quota");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(recorder.0.lock().len(), 1, "90 %: nothing new to report");

    for _ in 0..3 {
        state.usage.count_request("quota");
    }
    let seen = flushed(&recorder, 2).await;
    assert_eq!(seen[1], ("quota".to_owned(), QuotaKind::Messages, QuotaLevel::Exceeded100, 12, 10));
    assert!(ns.over_message_quota(), "client events are refused from now on");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(data_dir);
}
