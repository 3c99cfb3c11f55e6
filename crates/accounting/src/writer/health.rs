//! What the writer shares with the request path and `/ready`: its counters, how many records
//! wait, how old the oldest is and when it last made progress, read without locks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::dead_letter::DeadLetterFile;

/// State shared by the writer task, every `UsageSender` and the gauge ticker.
#[derive(Debug)]
pub(crate) struct Shared {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// Records accepted and not yet written, dead-lettered or dropped.
    waiting: AtomicU64,
    /// Nanoseconds after `base` at which the oldest record of the writer's batch was queued,
    /// plus one; 0 when the batch is empty.
    oldest: AtomicU64,
    /// Nanoseconds after `base` of the writer's last progress (records written or
    /// dead-lettered, or the start).
    progress: AtomicU64,
    base: Instant,
    pub stall_after: Duration,
    pub file: Arc<DeadLetterFile>,
}

impl Shared {
    pub(crate) fn new(stall_after: Duration, file: Arc<DeadLetterFile>) -> Self {
        Self {
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            oldest: AtomicU64::new(0),
            progress: AtomicU64::new(0),
            base: Instant::now(),
            stall_after,
            file,
        }
    }

    fn nanos_since_base(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// A record was queued.
    pub(crate) fn accepted(&self) {
        self.waiting.fetch_add(1, Ordering::Relaxed);
    }

    /// `count` records left the queue for good (written, dead-lettered or dropped).
    pub(crate) fn settled(&self, count: usize) {
        let count = count as u64;
        // Saturating: a record refused by a closed queue is never counted as waiting.
        let _ = self
            .waiting
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |waiting| {
                Some(waiting.saturating_sub(count))
            });
    }

    /// The writer made progress now.
    pub(crate) fn progressed(&self) {
        self.progress
            .store(self.nanos_since_base(Instant::now()), Ordering::Relaxed);
    }

    /// The oldest record of the writer's batch was queued at `at` (`None`: the batch is empty).
    pub(crate) fn set_oldest(&self, at: Option<Instant>) {
        let value = at.map_or(0, |at| self.nanos_since_base(at).saturating_add(1));
        self.oldest.store(value, Ordering::Relaxed);
    }

    /// A snapshot, and the age gauge set from it.
    pub(crate) fn health(&self) -> WriterHealth {
        let now = self.nanos_since_base(Instant::now());
        let waiting = self.waiting.load(Ordering::Relaxed);
        let oldest = self.oldest.load(Ordering::Relaxed);
        let oldest_age = if waiting == 0 || oldest == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(now.saturating_sub(oldest - 1))
        };
        let since_progress =
            Duration::from_nanos(now.saturating_sub(self.progress.load(Ordering::Relaxed)));
        metrics::gauge!("usage_writer_oldest_record_age_seconds").set(oldest_age.as_secs_f64());
        WriterHealth {
            waiting,
            oldest_age,
            // An idle writer has nothing to make progress on: the clock that matters starts
            // when the oldest waiting record arrived.
            since_progress: since_progress.min(oldest_age),
            stall_after: self.stall_after,
        }
    }
}

/// A cheap snapshot of the usage writer's state (atomics only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterHealth {
    /// Records accepted and not yet written, dead-lettered or dropped.
    pub waiting: u64,
    /// How long the oldest record of the writer's current batch has waited (0 when none).
    pub oldest_age: Duration,
    /// How long the writer has held waiting records without writing any (0 when none wait).
    pub since_progress: Duration,
    /// After how long without progress the writer counts as stalled.
    pub stall_after: Duration,
}

impl WriterHealth {
    /// Whether records wait and nothing was written for longer than `stall_after`.
    pub fn is_stalled(&self) -> bool {
        self.waiting > 0 && self.since_progress > self.stall_after
    }

    /// The `/ready` reason while stalled.
    pub fn stall_reason(&self) -> Option<String> {
        self.is_stalled().then(|| {
            format!(
                "usage writer stalled: {} records waiting, none written for {} s",
                self.waiting,
                self.since_progress.as_secs()
            )
        })
    }
}

/// Keeps `usage_writer_oldest_record_age_seconds` current while the writer is blocked in a
/// database call; ends when the writer and every sender are gone.
pub(crate) async fn tick_gauge(shared: std::sync::Weak<Shared>) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match shared.upgrade() {
            Some(shared) => {
                shared.health();
            }
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::Shared;
    use crate::writer::dead_letter::DeadLetterFile;

    fn shared(stall_after: Duration) -> Shared {
        Shared::new(
            stall_after,
            Arc::new(DeadLetterFile::new(std::env::temp_dir())),
        )
    }

    #[test]
    fn an_idle_writer_is_not_stalled() {
        let shared = shared(Duration::from_millis(10));
        std::thread::sleep(Duration::from_millis(30));
        let health = shared.health();
        assert_eq!(health.waiting, 0);
        assert_eq!(health.oldest_age, Duration::ZERO);
        assert!(!health.is_stalled());
        assert_eq!(health.stall_reason(), None);
    }

    #[test]
    fn a_fresh_record_after_a_long_idle_time_is_not_a_stall() {
        let shared = shared(Duration::from_millis(50));
        std::thread::sleep(Duration::from_millis(80));
        shared.accepted();
        shared.set_oldest(Some(Instant::now()));
        assert!(!shared.health().is_stalled(), "{:?}", shared.health());
    }

    #[test]
    fn waiting_records_without_progress_are_a_stall_until_written() {
        let shared = shared(Duration::from_millis(20));
        shared.accepted();
        shared.accepted();
        shared.set_oldest(Some(Instant::now()));
        std::thread::sleep(Duration::from_millis(60));
        let health = shared.health();
        assert_eq!(health.waiting, 2);
        assert!(health.oldest_age >= Duration::from_millis(60), "{health:?}");
        assert!(health.is_stalled(), "{health:?}");
        let reason = health.stall_reason().unwrap();
        assert!(
            reason.starts_with("usage writer stalled: 2 records waiting, none written for "),
            "{reason}"
        );
        shared.settled(2);
        shared.set_oldest(None);
        shared.progressed();
        let health = shared.health();
        assert_eq!(health.waiting, 0);
        assert!(!health.is_stalled(), "{health:?}");
    }

    #[test]
    fn recent_progress_with_an_old_record_waiting_is_not_a_stall() {
        let shared = shared(Duration::from_millis(20));
        shared.accepted();
        shared.set_oldest(Some(Instant::now()));
        std::thread::sleep(Duration::from_millis(60));
        shared.progressed();
        let health = shared.health();
        assert!(health.oldest_age >= Duration::from_millis(60));
        assert!(!health.is_stalled(), "{health:?}");
    }
}
