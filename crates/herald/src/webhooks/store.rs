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
//! * `dead_letters`: `id` → [`DeadLetter`] (JSON): deliveries that failed for the whole retry
//!   window; listed and re-sent through the admin endpoints.
//! * `meta`: the next `seq` and dead-letter `id` (allocated inside the write transaction, so
//!   the single-writer rule of redb orders them without a lock of ours).
//!
//! All methods block on disk I/O: async callers run them with `spawn_blocking`.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

const OUTBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("outbox");
const DEAD: TableDefinition<u64, &[u8]> = TableDefinition::new("dead_letters");
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
}

impl DeliveryStore {
    /// Opens (creating if needed) `{dir}/webhooks.redb`, creating `dir` too.
    pub(super) fn open(dir: &Path, gauge: metrics::Gauge) -> Result<DeliveryStore, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::CreateDir { path: dir.display().to_string(), source })?;
        let db = Database::create(dir.join(FILE_NAME))?;
        let tx = db.begin_write()?;
        let depth = {
            let outbox = tx.open_table(OUTBOX)?;
            tx.open_table(DEAD)?;
            tx.open_table(META)?;
            outbox.len()?
        };
        tx.commit()?;
        gauge.set(depth as f64);
        Ok(DeliveryStore { db, depth: watch::Sender::new(depth as i64), gauge })
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
        self.add_depth(items.len() as i64);
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
            self.add_depth(-1);
        }
        Ok(())
    }

    /// Moves an outbox entry to the dead letters (one durable transaction); returns its id.
    pub(super) fn dead_letter(&self, target: &str, seq: u64, mut dl: DeadLetter) -> Result<u64, StoreError> {
        let tx = self.db.begin_write()?;
        let removed;
        {
            let mut meta = tx.open_table(META)?;
            let id = meta.get("next_dead")?.map_or(1, |v| v.value());
            meta.insert("next_dead", id + 1)?;
            dl.id = id;
            tx.open_table(DEAD)?.insert(id, serde_json::to_vec(&dl)?.as_slice())?;
            removed = tx.open_table(OUTBOX)?.remove((target, seq))?.is_some();
        }
        tx.commit()?;
        if removed {
            self.add_depth(-1);
        }
        Ok(dl.id)
    }

    /// Dead letters of `app_id`, oldest first.
    pub(super) fn dead_letters(&self, app_id: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let tx = self.db.begin_read()?;
        let dead = tx.open_table(DEAD)?;
        let mut out = Vec::new();
        for row in dead.iter()? {
            let (_, v) = row?;
            let dl: DeadLetter = serde_json::from_slice(v.value())?;
            if dl.app_id == app_id {
                out.push(dl);
            }
        }
        Ok(out)
    }

    /// Moves dead letters of `app_id` (`id`, or all when `None`) back to the end of their
    /// target's queue, with the body rebuilt by `refresh` (a new `time_ms`). Returns the
    /// number moved and the target keys that got work. Letters whose target `known` rejects
    /// are left in place.
    pub(super) fn resend(
        &self,
        app_id: &str,
        id: Option<u64>,
        known: impl Fn(&str) -> bool,
        refresh: impl Fn(&str) -> Result<String, serde_json::Error>,
    ) -> Result<(usize, Vec<String>), StoreError> {
        let letters: Vec<DeadLetter> = match id {
            Some(id) => self.dead_letters(app_id)?.into_iter().filter(|d| d.id == id).collect(),
            None => self.dead_letters(app_id)?,
        };
        let letters: Vec<DeadLetter> = letters.into_iter().filter(|d| known(&d.target)).collect();
        if letters.is_empty() {
            return Ok((0, Vec::new()));
        }
        let now = super::payload::now_ms();
        let tx = self.db.begin_write()?;
        let mut targets = Vec::new();
        {
            let mut meta = tx.open_table(META)?;
            let mut seq = meta.get("next_seq")?.map_or(1, |v| v.value());
            let mut outbox = tx.open_table(OUTBOX)?;
            let mut dead = tx.open_table(DEAD)?;
            for dl in &letters {
                let record = Record { app_id: dl.app_id.clone(), body: refresh(&dl.body)?, created_ms: now };
                outbox.insert((dl.target.as_str(), seq), serde_json::to_vec(&record)?.as_slice())?;
                seq += 1;
                dead.remove(dl.id)?;
                if !targets.contains(&dl.target) {
                    targets.push(dl.target.clone());
                }
            }
            meta.insert("next_seq", seq)?;
        }
        tx.commit()?;
        self.add_depth(letters.len() as i64);
        Ok((letters.len(), targets))
    }

    /// Target keys with pending entries (used at start to find entries of removed targets).
    pub(super) fn pending_targets(&self) -> Result<Vec<String>, StoreError> {
        let tx = self.db.begin_read()?;
        let outbox = tx.open_table(OUTBOX)?;
        let mut out: Vec<String> = Vec::new();
        for row in outbox.iter()? {
            let (k, _) = row?;
            let t = k.value().0;
            if out.last().map(String::as_str) != Some(t) {
                out.push(t.to_owned());
            }
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

    #[test]
    fn fifo_per_target_survives_reopen_and_dead_letters_resend() {
        let dir = temp_dir("fifo");
        {
            let o = DeliveryStore::open(&dir, metrics::Gauge::noop()).unwrap();
            o.enqueue(&[("t1".into(), rec("1")), ("t2".into(), rec("x")), ("t1".into(), rec("2"))]).unwrap();
            let (seq, r) = o.head("t1").unwrap().unwrap();
            assert_eq!(r.body, "1");
            o.remove("t1", seq).unwrap();
            assert_eq!(o.depth(), 2);
        }
        let o = DeliveryStore::open(&dir, metrics::Gauge::noop()).unwrap();
        assert_eq!(o.depth(), 2);
        assert_eq!(o.pending_targets().unwrap(), ["t1", "t2"]);
        let (seq, r) = o.head("t1").unwrap().unwrap();
        assert_eq!(r.body, "2");
        let dl = DeadLetter {
            id: 0,
            app_id: "a".into(),
            target: "t1".into(),
            url: "http://x".into(),
            body: r.body,
            created_ms: 1,
            failed_ms: 2,
            attempts: 3,
            last_error: "HTTP 500".into(),
        };
        let id = o.dead_letter("t1", seq, dl).unwrap();
        assert!(o.head("t1").unwrap().is_none());
        assert_eq!(o.dead_letters("a").unwrap().len(), 1);
        assert!(o.dead_letters("b").unwrap().is_empty());
        let t = o.resend("a", Some(id), |_| true, |b| Ok(format!("{b}!"))).unwrap();
        assert_eq!(t, (1, vec!["t1".to_string()]));
        assert_eq!(o.head("t1").unwrap().unwrap().1.body, "2!");
        assert!(o.dead_letters("a").unwrap().is_empty());
        drop(o);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
