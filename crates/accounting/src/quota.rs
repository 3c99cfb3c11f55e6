//! Spending limits (`users.quota_usd`, null = unlimited): a request is refused with 402 when
//! its user has spent the quota.
//!
//! The spend is the user's `used_usd` as of the cached client-key look-up (at most 30 s
//! old), plus what this replica has recorded for the user since that look-up. The limit is
//! soft: a request in flight finishes and is charged, and traffic on other replicas since
//! the look-up is seen only at the next one. Users without a quota cost nothing here.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Seconds of spend each user's ring keeps; longer than a cached client key lives.
const WINDOW_SECONDS: usize = 64;

/// One user's recent spend on this replica, in one-second buckets.
#[derive(Debug, Clone)]
struct Ring {
    /// `(unix second, USD)`; a bucket whose second is not the one asked for is stale.
    buckets: [(i64, f64); WINDOW_SECONDS],
}

impl Ring {
    fn new() -> Self {
        Self {
            buckets: [(i64::MIN, 0.0); WINDOW_SECONDS],
        }
    }

    fn slot(second: i64) -> usize {
        // WINDOW_SECONDS is far below i64::MAX, so the remainder fits in a usize.
        usize::try_from(second.rem_euclid(WINDOW_SECONDS as i64)).unwrap_or(0)
    }

    fn add(&mut self, second: i64, usd: f64) {
        let bucket = &mut self.buckets[Self::slot(second)];
        if bucket.0 != second {
            *bucket = (second, 0.0);
        }
        bucket.1 += usd;
    }

    /// USD recorded in `[since, now]`, counting whole seconds (so a little more, never less,
    /// than was spent after the look-up at `since`).
    fn since(&self, since: i64, now: i64) -> f64 {
        let oldest = now.saturating_sub(WINDOW_SECONDS as i64 - 1).max(since);
        self.buckets
            .iter()
            .filter(|(second, _)| *second >= oldest && *second <= now)
            .map(|(_, usd)| usd)
            .sum()
    }
}

/// This replica's recent spend per user with a quota.
#[derive(Clone)]
pub struct SpendLedger {
    users: moka::sync::Cache<String, Arc<Mutex<Ring>>>,
}

impl std::fmt::Debug for SpendLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpendLedger")
            .field("users", &self.users.entry_count())
            .finish()
    }
}

impl Default for SpendLedger {
    fn default() -> Self {
        Self {
            users: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(WINDOW_SECONDS as u64 * 2))
                .build(),
        }
    }
}

impl SpendLedger {
    /// Adds a finished request's cost (`usage.total_cost_usd`) for `user_id` at `second`.
    pub fn record(&self, user_id: &str, second: i64, usd: f64) {
        if usd <= 0.0 || !usd.is_finite() {
            return;
        }
        let ring = self
            .users
            .get_with_by_ref(user_id, || Arc::new(Mutex::new(Ring::new())));
        ring.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add(second, usd);
    }

    /// What `user_id` has spent on this replica from `since` to `now` (Unix seconds).
    pub fn spent_since(&self, user_id: &str, since: i64, now: i64) -> f64 {
        self.users.get(user_id).map_or(0.0, |ring| {
            ring.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .since(since, now)
        })
    }
}

/// Whether a user with `quota` USD, `used` USD as of the look-up and `recent` USD since, may
/// send another request: they may while they have spent less than the quota.
pub fn within(quota: Option<f64>, used: f64, recent: f64) -> bool {
    quota.is_none_or(|quota| used + recent < quota)
}

#[cfg(test)]
mod tests {
    use super::{SpendLedger, within};

    #[test]
    fn the_ledger_counts_spend_since_a_second_within_its_window() {
        let ledger = SpendLedger::default();
        ledger.record("u", 1_000, 0.5);
        ledger.record("u", 1_000, 0.25);
        ledger.record("u", 1_010, 1.0);
        ledger.record("other", 1_010, 7.0);
        ledger.record("u", 1_011, 0.0);
        assert!((ledger.spent_since("u", 1_000, 1_010) - 1.75).abs() < 1e-12);
        assert!((ledger.spent_since("u", 1_001, 1_010) - 1.0).abs() < 1e-12);
        assert!(ledger.spent_since("u", 1_011, 1_011).abs() < 1e-12);
        assert!(ledger.spent_since("nobody", 0, 1_010).abs() < 1e-12);
        // A bucket reused 64 seconds later starts from zero.
        ledger.record("u", 1_064, 2.0);
        assert!((ledger.spent_since("u", 1_010, 1_064) - 3.0).abs() < 1e-12);
        // Seconds older than the window are forgotten.
        assert!((ledger.spent_since("u", 0, 1_200)).abs() < 1e-12);
    }

    #[test]
    fn a_user_may_spend_up_to_the_quota() {
        assert!(within(None, 1e9, 1e9));
        assert!(within(Some(10.0), 9.0, 0.5));
        assert!(!within(Some(10.0), 9.0, 1.0));
        assert!(!within(Some(10.0), 10.5, 0.0));
        assert!(!within(Some(0.0), 0.0, 0.0));
    }
}
