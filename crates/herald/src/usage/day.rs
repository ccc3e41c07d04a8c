//! UTC calendar arithmetic and one app's counts for one UTC day.
//!
//! herald has no date library; the days-to-civil conversion is Howard Hinnant's algorithm
//! (proleptic Gregorian, exact for every day since 1970). [`AppDay`] is what the flusher keeps
//! per app and what the single-node file persists; it also remembers which quota levels were
//! already reported today, so each crossing is reported once.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Hours kept per app (the usage API shows 24; one day more covers the rollover).
const HOURS_KEPT: u64 = 48;

/// The current time as (UTC day number since 1970-01-01, UTC hour number since the epoch).
pub(crate) fn now() -> (u64, u64) {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    (secs / 86_400, secs / 3_600)
}

/// `YYYY-MM-DD` of a UTC day number.
pub(crate) fn date(day: u64) -> String {
    let z = day as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// How far an app got towards a limit today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) enum Reached {
    #[default]
    Below,
    /// 80 % or more.
    Warning,
    /// 100 % or more.
    Exceeded,
}

impl Reached {
    pub(crate) fn of(used: u64, limit: u64) -> Reached {
        if used >= limit {
            Reached::Exceeded
        } else if used.saturating_mul(5) >= limit.saturating_mul(4) {
            Reached::Warning
        } else {
            Reached::Below
        }
    }
}

/// One app's usage for one UTC day.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct AppDay {
    /// The UTC day number these counts belong to.
    pub day: u64,
    /// Messages counted today (cluster-wide in a cluster, as of the last flush).
    pub messages: u64,
    /// Most connections seen at once today (cluster-wide in a cluster).
    pub peak_connections: u64,
    /// Messages per UTC hour number, the last [`HOURS_KEPT`] hours (single node; a cluster
    /// reads its hours from Redis).
    pub hours: BTreeMap<u64, u64>,
    /// The message quota level already reported today.
    #[serde(skip)]
    pub messages_reported: Reached,
    /// The connection quota level already reported today.
    #[serde(skip)]
    pub connections_reported: Reached,
}

impl AppDay {
    /// Starts a new day when `day` is later than the one held (counts back to 0 at 00:00 UTC).
    pub(crate) fn roll(&mut self, day: u64) {
        if self.day != day {
            let hours = std::mem::take(&mut self.hours);
            *self = AppDay { day, hours, ..AppDay::default() };
        }
    }

    /// Adds `n` messages at hour `hour`, forgetting hours older than [`HOURS_KEPT`].
    pub(crate) fn add(&mut self, hour: u64, n: u64) {
        self.messages += n;
        *self.hours.entry(hour).or_default() += n;
        self.hours.retain(|h, _| *h + HOURS_KEPT > hour);
    }

    /// The 24 hourly counts ending with `hour`, oldest first.
    pub(crate) fn last_24(&self, hour: u64) -> Vec<u64> {
        (0..24)
            .rev()
            .map(|back| hour.checked_sub(back).and_then(|h| self.hours.get(&h)).copied().unwrap_or(0))
            .collect()
    }

    /// The levels `used` of `limit` passed that were not reported yet today, lowest first: a
    /// count that jumped from below 80 % to over 100 % between two flushes passed both.
    pub(crate) fn crossed(reported: &mut Reached, used: u64, limit: Option<u64>) -> Vec<Reached> {
        let Some(limit) = limit else { return Vec::new() };
        let level = Reached::of(used, limit);
        let passed: Vec<Reached> =
            [Reached::Warning, Reached::Exceeded].into_iter().filter(|l| *l > *reported && *l <= level).collect();
        if level > *reported {
            *reported = level;
        }
        passed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jump_past_both_levels_reports_the_warning_and_the_excess_once() {
        let mut reported = Reached::Below;
        assert_eq!(AppDay::crossed(&mut reported, 70, Some(100)), []);
        assert_eq!(AppDay::crossed(&mut reported, 130, Some(100)), [Reached::Warning, Reached::Exceeded]);
        assert_eq!(AppDay::crossed(&mut reported, 140, Some(100)), []);
        let mut reported = Reached::Below;
        assert_eq!(AppDay::crossed(&mut reported, 85, Some(100)), [Reached::Warning]);
        assert_eq!(AppDay::crossed(&mut reported, 100, Some(100)), [Reached::Exceeded]);
    }

    #[test]
    fn day_numbers_become_utc_dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(11_016), "2000-02-29");
        assert_eq!(date(20_454), "2026-01-01");
        assert_eq!(date(20_792), "2026-12-05");
    }

    #[test]
    fn a_new_day_resets_the_counts_and_keeps_the_hours() {
        let mut d = AppDay { day: 10, ..AppDay::default() };
        d.add(250, 5);
        d.peak_connections = 3;
        d.messages_reported = Reached::Warning;
        d.roll(11);
        assert_eq!((d.day, d.messages, d.peak_connections, d.messages_reported), (11, 0, 0, Reached::Below));
        d.add(264, 2);
        let hourly = d.last_24(264);
        assert_eq!((hourly.len(), hourly[23], hourly.iter().sum::<u64>()), (24, 2, 7));
    }

    #[test]
    fn each_level_is_reported_once_in_order() {
        let mut reported = Reached::Below;
        assert_eq!(AppDay::crossed(&mut reported, 79, Some(100)), []);
        assert_eq!(AppDay::crossed(&mut reported, 80, Some(100)), [Reached::Warning]);
        assert_eq!(AppDay::crossed(&mut reported, 90, Some(100)), []);
        assert_eq!(AppDay::crossed(&mut reported, 150, Some(100)), [Reached::Exceeded]);
        assert_eq!(AppDay::crossed(&mut reported, 200, Some(100)), []);
        assert_eq!(AppDay::crossed(&mut reported, 200, None), [], "no limit, nothing to report");
    }
}
