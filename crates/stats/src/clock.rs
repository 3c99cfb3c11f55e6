//! Where "now" comes from: the system clock in production, a fixed clock in tests.

use std::sync::Mutex;

use time::OffsetDateTime;

/// A source of the current instant. The aggregator asks it for "now" to decide which
/// business day is today and to stamp the rows it writes.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant (any offset; callers convert to UTC).
    fn now(&self) -> OffsetDateTime;
}

/// The system clock, truncated to whole microseconds like every stored timestamp.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        tollgate_entities::now_utc()
    }
}

/// A clock that says whatever it was last set to; for tests and replays.
#[derive(Debug)]
pub struct FixedClock {
    instant: Mutex<OffsetDateTime>,
}

impl FixedClock {
    /// A clock stopped at `instant`.
    pub fn new(instant: OffsetDateTime) -> Self {
        Self {
            instant: Mutex::new(tollgate_entities::truncate_to_micros(instant)),
        }
    }

    /// Moves the clock to `instant`.
    pub fn set(&self, instant: OffsetDateTime) {
        let mut guard = self
            .instant
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = tollgate_entities::truncate_to_micros(instant);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self
            .instant
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
