//! A validated, jittered exponential backoff schedule.
//!
//! [`Backoff`] is a value: `initial`, doubling per attempt, capped at `max`, each delay
//! spread by ±`jitter` (a fraction) so that many deliveries failing at once do not retry in
//! lock-step, and a total budget `max_elapsed` after which the caller gives up. It holds no
//! state between attempts: the caller passes the attempt number and the time already spent.
//! Used by the webhook workers and by the alert delivery (`crate::alerts`).

use std::time::Duration;

/// Why a [`Backoff`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackoffError {
    #[error("initial delay must be greater than 0")]
    ZeroInitial,
    #[error("maximum delay ({max:?}) must not be below the initial delay ({initial:?})")]
    MaxBelowInitial { initial: Duration, max: Duration },
    #[error("jitter must be within 0.0..1.0, got {0}")]
    BadJitter(String),
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Wait this long, then try again.
    RetryAfter(Duration),
    /// The budget is spent: give up.
    GiveUp,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
    max_elapsed: Duration,
}

impl Backoff {
    pub(crate) fn new(
        initial: Duration,
        max: Duration,
        jitter: f64,
        max_elapsed: Duration,
    ) -> Result<Self, BackoffError> {
        if initial.is_zero() {
            return Err(BackoffError::ZeroInitial);
        }
        if max < initial {
            return Err(BackoffError::MaxBelowInitial { initial, max });
        }
        if !(0.0..1.0).contains(&jitter) {
            return Err(BackoffError::BadJitter(jitter.to_string()));
        }
        Ok(Backoff { initial, max, jitter, max_elapsed })
    }

    /// The webhook schedule: `initial`, doubling, capped at 60 s (or `initial` if larger), ±20 %.
    pub(crate) fn webhooks(initial: Duration, max_elapsed: Duration) -> Result<Self, BackoffError> {
        Backoff::new(initial, Duration::from_secs(60).max(initial), 0.2, max_elapsed)
    }

    /// The un-jittered delay after failed attempt number `attempt` (1 = the first failure).
    pub(super) fn base_delay(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(32);
        self.initial.saturating_mul(1u32 << shift.min(31)).min(self.max)
    }

    /// The delay after failed attempt `attempt`, jittered by `unit` (a number in 0..1, e.g.
    /// from a random generator: 0.5 = no change), never beyond `max`.
    pub(super) fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.base_delay(attempt).as_secs_f64();
        let factor = 1.0 - self.jitter + 2.0 * self.jitter * unit.clamp(0.0, 1.0);
        Duration::from_secs_f64((base * factor).max(0.001)).min(self.max)
    }

    /// After failed attempt `attempt`, `elapsed` after the first: wait (never past the
    /// budget, so the last attempt happens just before it ends) or give up.
    pub(crate) fn next(&self, attempt: u32, elapsed: Duration) -> Next {
        if elapsed >= self.max_elapsed {
            return Next::GiveUp;
        }
        let delay = self.delay_with(attempt, rand::random::<f64>());
        Next::RetryAfter(delay.min(self.max_elapsed - elapsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn doubles_and_caps() {
        let b = Backoff::webhooks(S(1), S(300)).unwrap();
        let d: Vec<u64> = (1..=9).map(|a| b.base_delay(a).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.base_delay(1000), S(60));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let b = Backoff::webhooks(S(10), S(300)).unwrap();
        assert_eq!(b.delay_with(1, 0.5), S(10));
        assert_eq!(b.delay_with(1, 0.0), S(8));
        assert_eq!(b.delay_with(1, 1.0), S(12));
        assert_eq!(b.delay_with(10, 1.0), S(60), "never above the cap");
    }

    #[test]
    fn gives_up_after_budget_and_never_sleeps_past_it() {
        let b = Backoff::webhooks(S(1), S(300)).unwrap();
        assert_eq!(b.next(9, S(300)), Next::GiveUp);
        match b.next(9, S(299)) {
            Next::RetryAfter(d) => assert!(d <= S(1)),
            Next::GiveUp => panic!("budget not spent"),
        }
    }

    #[test]
    fn rejects_bad_parameters() {
        assert_eq!(Backoff::new(Duration::ZERO, S(1), 0.1, S(1)), Err(BackoffError::ZeroInitial));
        assert!(matches!(Backoff::new(S(2), S(1), 0.1, S(1)), Err(BackoffError::MaxBelowInitial { .. })));
        assert!(matches!(Backoff::new(S(1), S(2), 1.5, S(1)), Err(BackoffError::BadJitter(_))));
    }
}
