//! [`DeliveryStore`]: the durable outbox of pending webhook deliveries and the dead letters, in
//! one redb file (`{data_dir}/webhooks.redb`). (Unrelated to a connection's send queue,
//! `herald_core::outbox::Outbox`.)
//!
//! Every delivery is written here (durably: `Durability::Immediate`) before it is attempted
//! and removed only after a 2xx, so a crash or a SIGKILL loses nothing: the next start
//! resumes from the table. Tables:
//!
//! * `outbox`: `(target key, seq)` → [`Record`] (JSON). The tuple key keeps each target's
//!   deliveries in creation order, so a worker's head is simply the first key in its range.
//! * `dead_letters_by_app`: `(app id, id)` → [`DeadLetter`] (JSON): deliveries that failed for
//!   the whole retry window; listed (a page at a time), re-sent and pruned per app, oldest
//!   first (`dead.rs`). Files written before it existed kept them in `dead_letters` (`id` →
//!   JSON); [`DeliveryStore::open`] moves those rows over.
//! * `meta`: the next `seq` and dead-letter `id` (allocated inside the write transaction, so
//!   the single-writer rule of redb orders them without a lock of ours).
//!
//! Per app the store also counts, in memory, the pending deliveries and the dead letters
//! (rebuilt by a scan at open), so the dispatcher can enforce `webhook_max_pending` and the
//! dead-letter cap without reading the file.
//!
//! All methods block on disk I/O: async callers run them with `spawn_blocking`.

mod dead;

pub(crate) use dead::Page;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

const OUTBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("outbox");
const DEAD: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("dead_letters_by_app");
/// The dead-letter table of files written before `dead_letters_by_app`; migrated at open.
const DEAD_V1: TableDefinition<u64, &[u8]> = TableDefinition::new("dead_letters");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The file name inside `data_dir`.
pub(super) const FILE_NAME: &str = "webhooks.redb";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create {path}: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("webhook store: {0}")]
    Store(#[from] redb::Error),
    #[error("webhook store record is corrupt: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("webhook store task failed: {0}")]
    Task(String),
}

macro_rules! store_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Store(e.into())
            }
        }
    )*};
}
store_err!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// One pending delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Record {
    pub app_id: String,
    /// The exact body to POST (signed at send time).
    pub body: String,
    /// Unix ms when the delivery was created (the retry window counts from here).
    pub created_ms: u64,
}

/// A delivery that exhausted its retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeadLetter {
    pub id: u64,
    pub app_id: String,
    /// The target key (see `worker::target_key`).
    pub target: String,
    pub url: String,
    pub body: String,
    pub created_ms: u64,
    pub failed_ms: u64,
    pub attempts: u32,
    pub last_error: String,
}

/// The webhook deliveries on disk: pending ones (the outbox) and dead letters.
pub(super) struct DeliveryStore {
    db: Database,
    /// Number of rows in `outbox`, for the gauge and the shutdown drain. A watch: updated by
    /// the dispatcher, the workers and the admin endpoints (each update under its short lock,
    /// so concurrent ones add up), and waited on by the shutdown drain until it reaches 0.
    depth: watch::Sender<i64>,
    gauge: metrics::Gauge,
    /// Per app id: pending deliveries and dead letters on disk. A std mutex: updated after
    /// each commit by the dispatcher, the workers and the admin endpoints, read by the
    /// dispatcher before it enqueues; held only for the map update, never across disk I/O.
    counts: Mutex<HashMap<String, AppCounts>>,
}

/// What one app has on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct AppCounts {
    pub pending: u64,
    pub dead: u64,
}

/// The app id of a target key (`{app_id} {url}`; app ids contain no space).
pub(super) fn app_of(target: &str) -> &str {
    target.split_once(' ').map_or(target, |(app, _)| app)
}

/// The URL of a target key (`{app_id} {url}` or `{app_id} {url}#{n}`).
pub(super) fn url_of(target: &str) -> &str {
    let rest = target.split_once(' ').map_or("", |(_, url)| url);
    match rest.rsplit_once('#') {
        Some((url, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => url,
        _ => rest,
    }
}

impl DeliveryStore {
    /// Opens (creating if needed) `{dir}/webhooks.redb`, creating `dir` too.
    pub(super) fn open(dir: &Path, gauge: metrics::Gauge) -> Result<DeliveryStore, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::CreateDir { path: dir.display().to_string(), source })?;
        let db = Database::create(dir.join(FILE_NAME))?;
        let tx = db.begin_write()?;
        let mut counts: HashMap<String, AppCounts> = HashMap::new();
        let depth = {
            let outbox = tx.open_table(OUTBOX)?;
            tx.open_table(META)?;
            dead::migrate_v1(&tx)?;
            for row in outbox.iter()? {
                let (k, _) = row?;
                counts.entry(app_of(k.value().0).to_owned()).or_default().pending += 1;
            }
            for row in tx.open_table(DEAD)?.iter()? {
                let (k, _) = row?;
                counts.entry(k.value().0.to_owned()).or_default().dead += 1;
            }
            outbox.len()?
        };
        tx.commit()?;
        gauge.set(depth as f64);
        Ok(DeliveryStore { db, depth: watch::Sender::new(depth as i64), gauge, counts: Mutex::new(counts) })
    }

    /// What `app_id` has on disk.
    pub(super) fn counts(&self, app_id: &str) -> AppCounts {
        self.counts.lock().map(|c| c.get(app_id).copied().unwrap_or_default()).unwrap_or_default()
    }

    /// App ids with dead letters (the age pruning visits each).
    pub(super) fn apps_with_dead_letters(&self) -> Vec<String> {
        self.counts
            .lock()
            .map(|c| c.iter().filter(|(_, n)| n.dead > 0).map(|(a, _)| a.clone()).collect())
            .unwrap_or_default()
    }

    /// Applies a committed change of `app_id`'s counts (pending, dead letters).
    fn add_counts(&self, app_id: &str, pending: i64, dead: i64) {
        if pending != 0 {
            self.add_depth(pending);
        }
        if let Ok(mut c) = self.counts.lock() {
            let e = c.entry(app_id.to_owned()).or_default();
            e.pending = e.pending.saturating_add_signed(pending);
            e.dead = e.dead.saturating_add_signed(dead);
        }
    }

    pub(super) fn depth(&self) -> i64 {
        *self.depth.borrow()
    }

    /// Follows [`DeliveryStore::depth`] (the shutdown drain waits for 0).
    pub(super) fn watch_depth(&self) -> watch::Receiver<i64> {
        self.depth.subscribe()
    }

    fn add_depth(&self, n: i64) {
        self.depth.send_modify(|depth| {
            *depth += n;
            self.gauge.set(*depth as f64);
        });
    }

    /// Appends deliveries (target key, record) in one durable transaction.
    pub(super) fn enqueue(&self, items: &[(String, Record)]) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let mut seq = meta.get("next_seq")?.map_or(1, |v| v.value());
            let mut outbox = tx.open_table(OUTBOX)?;
            for (target, record) in items {
                outbox.insert((target.as_str(), seq), serde_json::to_vec(record)?.as_slice())?;
                seq += 1;
            }
            meta.insert("next_seq", seq)?;
        }
        tx.commit()?;
        let mut per_app: HashMap<&str, i64> = HashMap::new();
        for (target, _) in items {
            *per_app.entry(app_of(target)).or_default() += 1;
        }
        for (app, n) in per_app {
            self.add_counts(app, n, 0);
        }
        Ok(())
    }

    /// The oldest pending delivery of `target`.
    pub(super) fn head(&self, target: &str) -> Result<Option<(u64, Record)>, StoreError> {
        let tx = self.db.begin_read()?;
        let outbox = tx.open_table(OUTBOX)?;
        let mut range = outbox.range((target, 0)..=(target, u64::MAX))?;
        match range.next() {
            Some(row) => {
                let (k, v) = row?;
                Ok(Some((k.value().1, serde_json::from_slice(v.value())?)))
            }
            None => Ok(None),
        }
    }

    /// Removes a delivered entry. Not fsynced on its own (the next durable commit persists
    /// it): after a crash the entry may be delivered again, which at-least-once allows.
    pub(super) fn remove(&self, target: &str, seq: u64) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::None)?;
        let removed = tx.open_table(OUTBOX)?.remove((target, seq))?.is_some();
        tx.commit()?;
        if removed {
            self.add_counts(app_of(target), -1, 0);
        }
        Ok(())
    }

    /// Up to `limit` pending deliveries of `app_id` as `(target key, seq, record)`, target by
    /// target, each in creation order. (Target keys are `{app_id} {url}…` and app ids hold no
    /// space, so the app's keys are exactly those from `"{app_id} "` up to `"{app_id}!"`.)
    pub(in crate::webhooks) fn pending_of_app(
        &self,
        app_id: &str,
        limit: usize,
    ) -> Result<Vec<(String, u64, Record)>, StoreError> {
        let tx = self.db.begin_read()?;
        let outbox = tx.open_table(OUTBOX)?;
        let (lo, hi) = (format!("{app_id} "), format!("{app_id}!"));
        let mut out = Vec::new();
        for row in outbox.range((lo.as_str(), 0)..(hi.as_str(), 0))?.take(limit) {
            let (k, v) = row?;
            let (target, seq) = k.value();
            out.push((target.to_owned(), seq, serde_json::from_slice(v.value())?));
        }
        Ok(out)
    }

    /// Target keys with pending entries (to find the entries of targets no longer
    /// configured). One range lookup per key, whatever the number of entries.
    pub(super) fn pending_targets(&self) -> Result<Vec<String>, StoreError> {
        let tx = self.db.begin_read()?;
        let outbox = tx.open_table(OUTBOX)?;
        let mut out: Vec<String> = Vec::new();
        loop {
            // Past every entry of the last key found (no entry has seq u64::MAX).
            let next = match out.last() {
                None => outbox.iter()?.next(),
                Some(last) => outbox.range((last.as_str(), u64::MAX)..)?.next(),
            };
            let Some(row) = next else { break };
            let (k, _) = row?;
            let t = k.value().0;
            if out.last().map(String::as_str) == Some(t) {
                break;
            }
            out.push(t.to_owned());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("herald-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn rec(body: &str) -> Record {
        Record { app_id: "a".into(), body: body.into(), created_ms: 1 }
    }

    fn letter(app: &str, target: &str, failed_ms: u64) -> DeadLetter {
        DeadLetter {
            id: 0,
            app_id: app.into(),
            target: target.into(),
            url: "http://x".into(),
            body: "{}".into(),
            created_ms: 1,
            failed_ms,
            attempts: 3,
            last_error: "HTTP 500".into(),
        }
    }

    #[test]
    fn pending_of_app_lists_only_that_apps_targets_in_order() {
        let dir = temp_dir("pending-of-app");
        let store = DeliveryStore::open(&dir, metrics::Gauge::noop()).unwrap();
        let items = [("a http://x", "1"), ("ab http://x", "2"), ("a http://y", "3"), ("a http://x", "4")];
        let items: Vec<(String, Record)> = items.iter().map(|(t, b)| (t.to_string(), rec(b))).collect();
        store.enqueue(&items).unwrap();
        let listed = store.pending_of_app("a", 10).unwrap();
        let bodies: Vec<(&str, &str)> = listed.iter().map(|(t, _, r)| (t.as_str(), r.body.as_str())).collect();
        assert_eq!(bodies, [("a http://x", "1"), ("a http://x", "4"), ("a http://y", "3")]);
        assert_eq!(store.pending_of_app("a", 1).unwrap().len(), 1);
        assert_eq!(store.pending_of_app("ab", 10).unwrap().len(), 1);
    }

    #[test]
    fn fifo_per_target_survives_reopen_and_dead_letters_resend() {
        let dir = temp_dir("fifo");
        {
            let o = DeliveryStore::open(&dir, metrics::Gauge::noop()).unwrap();
            o.enqueue(&[("a t1".into(), rec("1")), ("a t2".into(), rec("x")), ("a t1".into(), rec("2"))]).unwrap();
            let (seq, r) = o.head("a t1").unwrap().unwrap();
            assert_eq!(r.body, "1");
            o.remove("a t1", seq).unwrap();
            assert_eq!(o.depth(), 2);
        }
        let o = DeliveryStore::open(&dir, metrics::Gauge::noop()).unwrap();
        assert_eq!(o.depth(), 2);
        assert_eq!(o.counts("a"), AppCounts { pending: 2, dead: 0 });
        assert_eq!(o.pending_targets().unwrap(), ["a t1", "a t2"]);
        let (seq, r) = o.head("a t1").unwrap().unwrap();
        assert_eq!(r.body, "2");
        let dl = DeadLetter { body: r.body, ..letter("a", "a t1", 2) };
        let (id, pruned) = o.dead_letter("a t1", seq, dl, 10).unwrap();
        assert_eq!(pruned, 0);
        assert!(o.head("a t1").unwrap().is_none());
        assert_eq!(o.counts("a"), AppCounts { pending: 1, dead: 1 });
        assert_eq!(o.dead_letters_page("a", None, 10).unwrap().letters.len(), 1);
        assert!(o.dead_letters_page("b", None, 10).unwrap().letters.is_empty());
        let t = o.resend("a", Some(id), |_| true, |b| Ok(format!("{b}!"))).unwrap();
        assert_eq!(t, (1, vec!["a t1".to_string()]));
        assert_eq!(o.head("a t1").unwrap().unwrap().1.body, "2!");
        assert!(o.dead_letters_page("a", None, 10).unwrap().letters.is_empty());
        assert_eq!(o.counts("a"), AppCounts { pending: 2, dead: 0 });
        drop(o);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn entries_of_an_unconfigured_target_expire_into_dead_letters_oldest_first() {
        let dir = temp_dir("expire");
        let o = DeliveryStore::open(&dir, metrics::Gauge::noop()).unwrap();
        let at = |ms: u64, body: &str| Record { app_id: "a".into(), body: body.into(), created_ms: ms };
        let gone = "a http://gone/x#1";
        o.enqueue(&[(gone.into(), at(1, "1")), ("a t".into(), at(1, "k")), (gone.into(), at(2, "2"))]).unwrap();
        o.enqueue(&[(gone.into(), at(9, "3")), ("b t".into(), at(1, "b"))]).unwrap();
        assert_eq!(o.pending_targets().unwrap(), ["a http://gone/x#1", "a t", "b t"]);
        assert_eq!(o.expire(gone, 1, "target removed", 10, 100).unwrap(), (0, 0), "none older than 1");
        assert_eq!(o.expire(gone, 5, "target removed", 1, 100).unwrap(), (2, 1), "cap 1 prunes the older");
        assert_eq!(o.head(gone).unwrap().unwrap().1.body, "3", "the younger one stays");
        assert_eq!(o.counts("a"), AppCounts { pending: 2, dead: 1 });
        let letters = o.dead_letters_page("a", None, 10).unwrap().letters;
        assert_eq!(letters.len(), 1);
        let d = &letters[0];
        assert_eq!((d.body.as_str(), d.url.as_str(), d.last_error.as_str()), ("2", "http://gone/x", "target removed"));
        assert_eq!(url_of("a http://h/p#frag"), "http://h/p#frag");
        drop(o);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn dead_letters_are_capped_per_app_oldest_first_and_paged() {
        let dir = temp_dir("dead-cap");
        let o = DeliveryStore::open(&dir, metrics::Gauge::noop()).unwrap();
        for i in 0..5 {
            assert_eq!(o.dead_letter("a t", 0, letter("a", "a t", i), 3).unwrap().1, u64::from(i >= 3));
        }
        o.dead_letter("b t", 0, letter("b", "b t", 0), 3).unwrap();
        assert_eq!(o.counts("a").dead, 3);
        assert_eq!(o.counts("b").dead, 1);
        let first = o.dead_letters_page("a", None, 2).unwrap();
        let failed: Vec<u64> = first.letters.iter().map(|d| d.failed_ms).collect();
        assert_eq!(failed, [2, 3], "the two oldest were pruned");
        let second = o.dead_letters_page("a", first.next, 2).unwrap();
        assert_eq!(second.letters.iter().map(|d| d.failed_ms).collect::<Vec<_>>(), [4]);
        assert_eq!(second.next, None);

        assert_eq!(o.prune_older_than("a", 4).unwrap(), 2);
        assert_eq!(o.prune_older_than("a", 4).unwrap(), 0);
        assert_eq!(o.counts("a").dead, 1);
        drop(o);
        let o = DeliveryStore::open(&dir, metrics::Gauge::noop()).unwrap();
        assert_eq!(o.counts("a"), AppCounts { pending: 0, dead: 1 });
        assert_eq!(o.apps_with_dead_letters().len(), 2);
        drop(o);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn dead_letters_of_an_older_file_are_migrated_at_open() {
        let dir = temp_dir("dead-v1");
        std::fs::create_dir_all(&dir).unwrap();
        {
            let db = Database::create(dir.join(FILE_NAME)).unwrap();
            let tx = db.begin_write().unwrap();
            let dl = DeadLetter { id: 7, ..letter("a", "a t", 5) };
            tx.open_table(DEAD_V1).unwrap().insert(7, serde_json::to_vec(&dl).unwrap().as_slice()).unwrap();
            tx.commit().unwrap();
        }
        let o = DeliveryStore::open(&dir, metrics::Gauge::noop()).unwrap();
        let page = o.dead_letters_page("a", None, 10).unwrap();
        assert_eq!(page.letters.iter().map(|d| d.id).collect::<Vec<_>>(), [7]);
        assert_eq!(o.counts("a").dead, 1);
        drop(o);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
