//! The in-process tier: a bounded moka cache with a TTL per entry.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::sync::Cache as Moka;

use crate::Entry;

/// One stored entry: a typed value behind `Any` (so a hit costs a downcast and a clone, no
/// decoding) and how long it lives.
#[derive(Clone)]
struct Item {
    value: Arc<dyn Any + Send + Sync>,
    ttl: Duration,
}

/// Each entry expires after its own TTL, so `Found` and `Missing` can live for different times.
struct PerEntryTtl;

impl Expiry<String, Item> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, item: &Item, _at: Instant) -> Option<Duration> {
        Some(item.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        item: &Item,
        _at: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(item.ttl)
    }
}

/// The in-process tier. Cloning shares the same entries.
#[derive(Clone)]
pub(crate) struct Local {
    entries: Moka<String, Item>,
}

impl Local {
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            entries: Moka::builder()
                .max_capacity(capacity)
                .expire_after(PerEntryTtl)
                .build(),
        }
    }

    /// The entry under `key` if it holds an `Entry<V>`; an entry of another type (a family
    /// rendering a colliding key) reads as a miss.
    pub(crate) fn get<V: Clone + 'static>(&self, key: &str) -> Option<Entry<V>> {
        let item = self.entries.get(key)?;
        item.value.downcast_ref::<Entry<V>>().cloned()
    }

    pub(crate) fn insert<V: Send + Sync + 'static>(
        &self,
        key: String,
        entry: Entry<V>,
        ttl: Duration,
    ) {
        if ttl.is_zero() {
            return;
        }
        self.entries.insert(
            key,
            Item {
                value: Arc::new(entry),
                ttl,
            },
        );
    }

    pub(crate) fn remove(&self, key: &str) {
        self.entries.invalidate(key);
    }

    pub(crate) fn clear(&self) {
        self.entries.invalidate_all();
    }

    /// Adds one to the counter under `key` (starting at 1) and restarts its TTL.
    pub(crate) fn increment(&self, key: String, ttl: Duration) -> i64 {
        let entry = self.entries.entry(key).and_upsert_with(|current| {
            let previous = current
                .and_then(|entry| entry.into_value().value.downcast_ref::<i64>().copied())
                .unwrap_or(0);
            Item {
                value: Arc::new(previous.saturating_add(1)),
                ttl,
            }
        });
        entry
            .into_value()
            .value
            .downcast_ref::<i64>()
            .copied()
            .unwrap_or(1)
    }

    pub(crate) fn set_counter(&self, key: String, value: i64, ttl: Duration) {
        self.entries.insert(
            key,
            Item {
                value: Arc::new(value),
                ttl,
            },
        );
    }

    pub(crate) fn counter(&self, key: &str) -> Option<i64> {
        self.entries.get(key)?.value.downcast_ref::<i64>().copied()
    }

    /// The exact number of live entries (pending evictions are applied first, which costs
    /// time: for diagnostics and tests, not hot paths).
    pub(crate) fn entry_count(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Local;
    use crate::Entry;

    #[test]
    fn typed_round_trip_and_type_mismatch_is_a_miss() {
        let local = Local::new(10);
        local.insert("a".to_owned(), Entry::Found(5_u32), Duration::from_secs(10));
        assert_eq!(local.get::<u32>("a"), Some(Entry::Found(5)));
        assert_eq!(local.get::<String>("a"), None);
        local.remove("a");
        assert_eq!(local.get::<u32>("a"), None);
    }

    #[test]
    fn counter_counts_from_one() {
        let local = Local::new(10);
        assert_eq!(local.increment("c".to_owned(), Duration::from_secs(10)), 1);
        assert_eq!(local.increment("c".to_owned(), Duration::from_secs(10)), 2);
        assert_eq!(local.counter("c"), Some(2));
    }
}
