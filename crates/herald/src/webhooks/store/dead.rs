//! The dead letters of [`DeliveryStore`]: moving a failed delivery there, listing them a page
//! at a time, re-sending them, and pruning them per app (oldest first) by count and by age.
//!
//! Rows are keyed `(app id, id)`: ids grow with the time a letter failed, so an app's range is
//! in age order, its first row is its oldest letter, and a page is a range read after a cursor.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::{app_of, url_of, DeadLetter, DeliveryStore, Record, StoreError, DEAD, DEAD_V1, META, OUTBOX};

/// One page of an app's dead letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    pub letters: Vec<DeadLetter>,
    /// The id to pass as `after` for the next page; `None` on the last page.
    pub next: Option<u64>,
}

/// Moves the rows of the pre-`dead_letters_by_app` table over, then deletes that table.
pub(super) fn migrate_v1(tx: &WriteTransaction) -> Result<(), StoreError> {
    let mut rows: Vec<(u64, Vec<u8>)> = Vec::new();
    {
        let old = tx.open_table(DEAD_V1)?;
        for row in old.iter()? {
            let (k, v) = row?;
            rows.push((k.value(), v.value().to_vec()));
        }
    }
    {
        let mut dead = tx.open_table(DEAD)?;
        for (id, bytes) in rows {
            let dl: DeadLetter = serde_json::from_slice(&bytes)?;
            dead.insert((dl.app_id.as_str(), id), bytes.as_slice())?;
        }
    }
    tx.delete_table(DEAD_V1)?;
    Ok(())
}

impl DeliveryStore {
    /// Moves an outbox entry to the dead letters and, if its app now has more than `max`,
    /// removes the app's oldest ones (one durable transaction). Returns the new id and how
    /// many were pruned.
    pub(in crate::webhooks) fn dead_letter(
        &self,
        target: &str,
        seq: u64,
        mut dl: DeadLetter,
        max: u64,
    ) -> Result<(u64, u64), StoreError> {
        let app = dl.app_id.clone();
        let over = (self.counts(&app).dead + 1).saturating_sub(max);
        let tx = self.db.begin_write()?;
        let removed;
        let mut pruned: u64 = 0;
        {
            let mut meta = tx.open_table(META)?;
            let id = meta.get("next_dead")?.map_or(1, |v| v.value());
            meta.insert("next_dead", id + 1)?;
            dl.id = id;
            let mut dead = tx.open_table(DEAD)?;
            dead.insert((app.as_str(), id), serde_json::to_vec(&dl)?.as_slice())?;
            for _ in 0..over {
                if dead.pop_first_in(&app)?.is_none() {
                    break;
                }
                pruned += 1;
            }
            removed = tx.open_table(OUTBOX)?.remove((target, seq))?.is_some();
        }
        tx.commit()?;
        self.add_counts(&app, if removed { -1 } else { 0 }, 1 - pruned as i64);
        Ok((dl.id, pruned))
    }

    /// Moves `target`'s outbox entries created before `cutoff_ms` (oldest first, at most
    /// `limit`, stopping at the first younger one) to the dead letters, with `error` as their
    /// last error and no attempt counted, then prunes the app's oldest letters beyond `max`
    /// (one durable transaction). For the entries of a target no longer configured. Returns
    /// how many were moved and how many pruned.
    pub(in crate::webhooks) fn expire(
        &self,
        target: &str,
        cutoff_ms: u64,
        error: &str,
        max: u64,
        limit: usize,
    ) -> Result<(u64, u64), StoreError> {
        // A read first: most calls find nothing to expire and need no write transaction.
        {
            let tx = self.db.begin_read()?;
            let outbox = tx.open_table(OUTBOX)?;
            let Some(row) = outbox.range((target, 0)..=(target, u64::MAX))?.next() else { return Ok((0, 0)) };
            if serde_json::from_slice::<Record>(row?.1.value())?.created_ms >= cutoff_ms {
                return Ok((0, 0));
            }
        }
        let app = app_of(target).to_owned();
        let now = crate::webhooks::payload::now_ms();
        let (mut moved, mut pruned) = (0u64, 0u64);
        let tx = self.db.begin_write()?;
        {
            let mut outbox = tx.open_table(OUTBOX)?;
            let mut expired: Vec<(u64, Record)> = Vec::new();
            for row in outbox.range((target, 0)..=(target, u64::MAX))? {
                let (k, v) = row?;
                let record: Record = serde_json::from_slice(v.value())?;
                if expired.len() == limit || record.created_ms >= cutoff_ms {
                    break;
                }
                expired.push((k.value().1, record));
            }
            let mut meta = tx.open_table(META)?;
            let mut id = meta.get("next_dead")?.map_or(1, |v| v.value());
            let mut dead = tx.open_table(DEAD)?;
            for (seq, record) in expired {
                let dl = DeadLetter {
                    id,
                    app_id: app.clone(),
                    target: target.to_owned(),
                    url: url_of(target).to_owned(),
                    body: record.body,
                    created_ms: record.created_ms,
                    failed_ms: now,
                    attempts: 0,
                    last_error: error.to_owned(),
                };
                dead.insert((app.as_str(), id), serde_json::to_vec(&dl)?.as_slice())?;
                outbox.remove((target, seq))?;
                id += 1;
                moved += 1;
            }
            meta.insert("next_dead", id)?;
            let over = (self.counts(&app).dead + moved).saturating_sub(max);
            for _ in 0..over {
                if dead.pop_first_in(&app)?.is_none() {
                    break;
                }
                pruned += 1;
            }
        }
        tx.commit()?;
        self.add_counts(&app, -(moved as i64), moved as i64 - pruned as i64);
        Ok((moved, pruned))
    }

    /// Up to `limit` dead letters of `app_id` with an id above `after`, oldest first.
    pub(in crate::webhooks) fn dead_letters_page(
        &self,
        app_id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let tx = self.db.begin_read()?;
        let dead = tx.open_table(DEAD)?;
        let from = after.map_or(0, |a| a.saturating_add(1));
        let mut letters = Vec::new();
        let mut more = false;
        for row in dead.range((app_id, from)..=(app_id, u64::MAX))? {
            if letters.len() == limit {
                more = true;
                break;
            }
            let (_, v) = row?;
            letters.push(serde_json::from_slice::<DeadLetter>(v.value())?);
        }
        let next = if more { letters.last().map(|d| d.id) } else { None };
        Ok(Page { letters, next })
    }

    /// Dead letter `id` of `app_id` (all of the app's when `None`), oldest first.
    fn select(&self, app_id: &str, id: Option<u64>) -> Result<Vec<DeadLetter>, StoreError> {
        let tx = self.db.begin_read()?;
        let dead = tx.open_table(DEAD)?;
        let (lo, hi) = id.map_or((0, u64::MAX), |id| (id, id));
        let mut out = Vec::new();
        for row in dead.range((app_id, lo)..=(app_id, hi))? {
            let (_, v) = row?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    /// Moves dead letters of `app_id` (`id`, or all when `None`) back to the end of their
    /// target's queue, with the body rebuilt by `refresh` (a new `time_ms`). Returns the
    /// number moved and the target keys that got work. Letters whose target `known` rejects
    /// are left in place. Not limited by `webhook_max_pending` (the dead-letter cap bounds it).
    pub(in crate::webhooks) fn resend(
        &self,
        app_id: &str,
        id: Option<u64>,
        known: impl Fn(&str) -> bool,
        refresh: impl Fn(&str) -> Result<String, serde_json::Error>,
    ) -> Result<(usize, Vec<String>), StoreError> {
        let letters: Vec<DeadLetter> = self.select(app_id, id)?.into_iter().filter(|d| known(&d.target)).collect();
        if letters.is_empty() {
            return Ok((0, Vec::new()));
        }
        let now = crate::webhooks::payload::now_ms();
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
                dead.remove((app_id, dl.id))?;
                if !targets.contains(&dl.target) {
                    targets.push(dl.target.clone());
                }
            }
            meta.insert("next_seq", seq)?;
        }
        tx.commit()?;
        // A letter's target belongs to its app, so `remove` later subtracts from the same count.
        let n = letters.len() as i64;
        self.add_counts(app_id, n, -n);
        Ok((letters.len(), targets))
    }

    /// Removes `app_id`'s dead letters that failed before `cutoff_ms` (oldest first, stopping
    /// at the first younger one); returns how many.
    pub(in crate::webhooks) fn prune_older_than(&self, app_id: &str, cutoff_ms: u64) -> Result<u64, StoreError> {
        // A read first: most calls find nothing to prune and need no write transaction.
        let oldest = {
            let tx = self.db.begin_read()?;
            let dead = tx.open_table(DEAD)?;
            let first = dead.range((app_id, 0)..=(app_id, u64::MAX))?.next();
            match first {
                Some(row) => serde_json::from_slice::<DeadLetter>(row?.1.value())?.failed_ms,
                None => return Ok(0),
            }
        };
        if oldest >= cutoff_ms {
            return Ok(0);
        }
        let tx = self.db.begin_write()?;
        let mut n = 0;
        {
            let mut dead = tx.open_table(DEAD)?;
            let mut expired = Vec::new();
            for row in dead.range((app_id, 0)..=(app_id, u64::MAX))? {
                let (k, v) = row?;
                if serde_json::from_slice::<DeadLetter>(v.value())?.failed_ms >= cutoff_ms {
                    break;
                }
                expired.push(k.value().1);
            }
            for id in expired {
                dead.remove((app_id, id))?;
                n += 1;
            }
        }
        tx.commit()?;
        self.add_counts(app_id, 0, -(n as i64));
        Ok(n)
    }
}

/// Removing the first row of an app's range.
trait PopFirstIn {
    fn pop_first_in(&mut self, app: &str) -> Result<Option<u64>, StoreError>;
}

impl PopFirstIn for redb::Table<'_, (&'static str, u64), &'static [u8]> {
    fn pop_first_in(&mut self, app: &str) -> Result<Option<u64>, StoreError> {
        let first = match self.range((app, 0)..=(app, u64::MAX))?.next() {
            Some(row) => row?.0.value().1,
            None => return Ok(None),
        };
        self.remove((app, first))?;
        Ok(Some(first))
    }
}
