//! A lock-free circuit breaker that keeps a failing Redis off the request path.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Closed while failures stay under the threshold; then open for the back-off period, after
/// which exactly one call per period is let through as a probe. A success closes it again.
///
/// Re-arming the open window when a probe is let through (rather than a "probe in flight"
/// flag) means a probe whose caller is cancelled cannot wedge the breaker open.
#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    backoff_ms: u64,
    started: Instant,
    failures: AtomicU32,
    /// Milliseconds since `started` until which Redis is skipped.
    open_until_ms: AtomicU64,
}

/// What a recorded failure did to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Nothing worth logging.
    None,
    /// This failure opened the breaker.
    Opened,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, backoff: Duration) -> Self {
        Self {
            threshold,
            backoff_ms: u64::try_from(backoff.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            started: Instant::now(),
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether a call may go to Redis now.
    pub(crate) fn allow(&self) -> bool {
        if self.failures.load(Ordering::Acquire) < self.threshold {
            return true;
        }
        let now = self.now_ms();
        let until = self.open_until_ms.load(Ordering::Acquire);
        if now < until {
            return false;
        }
        // The back-off has passed: let exactly one caller probe, and keep the others out for
        // another period in case the probe fails or is abandoned.
        self.open_until_ms
            .compare_exchange(
                until,
                now.saturating_add(self.backoff_ms),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Records a successful call; returns whether the breaker was open and is now closed.
    pub(crate) fn success(&self) -> bool {
        self.failures.swap(0, Ordering::AcqRel) >= self.threshold
    }

    /// Records a failed call.
    pub(crate) fn failure(&self) -> Transition {
        let failures = self
            .failures
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if failures >= self.threshold {
            self.open_until_ms.store(
                self.now_ms().saturating_add(self.backoff_ms),
                Ordering::Release,
            );
        }
        if failures == self.threshold {
            Transition::Opened
        } else {
            Transition::None
        }
    }

    /// The back-off period in milliseconds.
    pub(crate) fn backoff_ms(&self) -> u64 {
        self.backoff_ms
    }

    /// Whether the breaker is currently open (Redis is being skipped).
    pub(crate) fn is_open(&self) -> bool {
        self.failures.load(Ordering::Acquire) >= self.threshold
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Breaker, Transition};

    #[test]
    fn opens_after_threshold_then_lets_one_probe_through() {
        let breaker = Breaker::new(3, Duration::from_millis(30));
        assert!(breaker.allow());
        assert_eq!(breaker.failure(), Transition::None);
        assert_eq!(breaker.failure(), Transition::None);
        assert!(breaker.allow());
        assert_eq!(breaker.failure(), Transition::Opened);
        assert!(breaker.is_open());
        assert!(!breaker.allow());
        std::thread::sleep(Duration::from_millis(40));
        assert!(breaker.allow(), "one probe after the back-off");
        assert!(!breaker.allow(), "only one");
        assert!(breaker.success());
        assert!(!breaker.is_open());
        assert!(breaker.allow());
    }
}
